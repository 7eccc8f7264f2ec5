import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { Sequelize, Transaction, type QueryInterface } from 'sequelize';
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
    // IMMEDIATE: a transaction takes the write lock up front (waiting for it) instead of failing
    // with SQLITE_BUSY when it upgrades from reading to writing under another writer.
    const db = new Sequelize({ dialect: 'sqlite', storage, logging: false, pool: { max: 1, min: 0 }, transactionType: Transaction.TYPES.IMMEDIATE });
    // sequelize opens one more SQLite connection per transaction, and a busy timeout is per
    // connection: give every connection one, not just the first.
    const cm = db.connectionManager as unknown as { getConnection(o?: unknown): Promise<{ configure(opt: 'busyTimeout', ms: number): void }> };
    const open = cm.getConnection.bind(cm);
    cm.getConnection = async (o) => { const c = await open(o); c.configure('busyTimeout', 5000); return c; };
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
