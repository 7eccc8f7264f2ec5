import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Sequelize, type QueryInterface } from 'sequelize';
import { Umzug, SequelizeStorage } from 'umzug';

/**
 * Opens a database from an oslo-style connection string: `sqlite:///ABS/PATH` (or `sqlite://` for
 * memory) for the embedded default, `postgres://user:pass@host:port/db` for the shared one.
 */
export function openDatabase(connection: string): Sequelize {
  if (connection.startsWith('sqlite:')) {
    const path = connection.replace(/^sqlite:(\/\/)?/, '') || ':memory:';
    const storage = path === '' || path === '/' ? ':memory:' : path;
    if (storage !== ':memory:') mkdirSync(dirname(storage), { recursive: true });
    const db = new Sequelize({ dialect: 'sqlite', storage, logging: false, pool: { max: 1, min: 0 } });
    return db;
  }
  if (/^postgres(ql)?:\/\//.test(connection)) {
    return new Sequelize(connection.replace(/^postgresql:/, 'postgres:'), { dialect: 'postgres', logging: false, pool: { max: 10 } });
  }
  throw new Error(`unsupported database connection ${JSON.stringify(connection.replace(/\/\/[^@]*@/, '//***@'))}: use sqlite:///PATH or postgres://...`);
}

/** SQLite pragmas for durability with concurrency: WAL, full fsync on commit, busy timeout. */
export async function tuneSqlite(db: Sequelize): Promise<void> {
  if (db.getDialect() !== 'sqlite') return;
  await db.query('PRAGMA journal_mode=WAL');
  await db.query('PRAGMA synchronous=FULL');
  await db.query('PRAGMA busy_timeout=5000');
  await db.query('PRAGMA foreign_keys=ON');
}

export interface Migration { name: string; up: (qi: QueryInterface) => Promise<void>; down?: (qi: QueryInterface) => Promise<void> }

/** Applies versioned migrations in order, recording them in a per-component table. */
export async function migrate(db: Sequelize, table: string, migrations: Migration[]): Promise<string[]> {
  const umzug = new Umzug({
    migrations: migrations.map((m) => ({
      name: m.name,
      up: async () => m.up(db.getQueryInterface()),
      down: async () => { if (m.down) await m.down(db.getQueryInterface()); },
    })),
    storage: new SequelizeStorage({ sequelize: db, tableName: table }),
    logger: undefined,
  });
  const done = await umzug.up();
  return done.map((m) => m.name);
}
