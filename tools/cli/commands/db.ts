import type { Command } from 'commander';
import type { Migration } from '../../../common/db.js';
import type { Config } from '../../../conf/options.js';
import type { CliContext } from '../context.js';
import { printList } from '../output.js';
import { UsageError } from '../usage-error.js';

type Run = (fn: (ctx: CliContext) => Promise<void>) => Promise<void>;

interface Component {
  name: 'compute' | 'images';
  connection: (c: Config) => string;
  table: string;
  migrations: Migration[];
}

/** The databases and their migrations, loaded only by the db commands (sequelize is slow to load). */
async function components(): Promise<Component[]> {
  const [driver, driverDb, images] = await Promise.all([
    import('../../../driver/db/migrations.js'),
    import('../../../driver/db/index.js'),
    import('../../../glance-bridge/store/migrations.js'),
  ]);
  return [
    { name: 'compute', connection: (c) => c.database.connection, table: driverDb.DRIVER_MIGRATIONS_TABLE, migrations: driver.migrations },
    { name: 'images', connection: (c) => c.image_store.connection, table: images.MIGRATIONS_TABLE, migrations: images.migrations },
  ];
}

async function pick(which: string | undefined): Promise<Component[]> {
  const all = await components();
  if (!which || which === 'all') return all;
  const found = all.filter((c) => c.name === which);
  if (!found.length) throw new UsageError(`berth db: unknown component ${JSON.stringify(which)} (compute, images or all)`);
  return found;
}

/**
 * `berth db sync` applies the databases' pending migrations explicitly (PostgreSQL: under an
 * advisory lock, so concurrent runs apply each migration once; SQLite: under a lock file), and
 * refuses a schema a newer Berth migrated (exit 1, naming the unknown migrations). `berth db
 * version` shows what is applied and pending without changing anything.
 */
export function registerDb(program: Command, run: Run): void {
  const db = program.command('db').description('the compute and image service databases (schema migrations)');
  db.command('sync [component]')
    .description('apply pending migrations (compute, images or all; default all), under a lock')
    .action((which: string | undefined) =>
      run(async (ctx) => {
        const { migrate, openDatabase, tuneSqlite } = await import('../../../common/db.js');
        const rows: Record<string, unknown>[] = [];
        for (const comp of await pick(which)) {
          const sq = openDatabase(comp.connection(ctx.config));
          try {
            await tuneSqlite(sq);
            const applied = await migrate(sq, comp.table, comp.migrations);
            rows.push({ component: comp.name, applied: applied.join(' ') || '-', version: comp.migrations.at(-1)?.name ?? '-' });
          } finally {
            await sq.close();
          }
        }
        printList(['component', 'applied', 'version'], rows, ctx.format);
      }),
    );
  db.command('version [component]')
    .description('the applied and pending migrations of each database (changes nothing)')
    .action((which: string | undefined) =>
      run(async (ctx) => {
        const { appliedMigrations, checkSchema, openDatabase } = await import('../../../common/db.js');
        const rows: Record<string, unknown>[] = [];
        for (const comp of await pick(which)) {
          const sq = openDatabase(comp.connection(ctx.config));
          try {
            const applied = await appliedMigrations(sq, comp.table);
            const { pending } = await checkSchema(sq, comp.table, comp.migrations);
            rows.push({ component: comp.name, version: applied.at(-1) ?? '-', pending: pending.join(' ') || '-' });
          } finally {
            await sq.close();
          }
        }
        printList(['component', 'version', 'pending'], rows, ctx.format);
      }),
    );
}
