import type { Sequelize } from 'sequelize';
import { openDatabase, prepareSchema, tuneSqlite } from '../../common/db.js';
import { migrations } from './migrations.js';
import { defineModels } from './models.js';

export * from './models.js';

/** Where the driver's applied migrations are recorded. */
export const DRIVER_MIGRATIONS_TABLE = 'berth_driver_migrations';

/**
 * Opens the driver's database, applies pending migrations (or, without `autoSync`, only checks
 * that none is pending) and binds the models.
 */
export async function openDriverDatabase(connection: string, opts: { autoSync?: boolean } = {}): Promise<Sequelize> {
  const db = openDatabase(connection);
  // Commits are made durable in groups, before a message is acknowledged or a notification sent.
  await tuneSqlite(db, { groupCommit: true });
  await prepareSchema(db, DRIVER_MIGRATIONS_TABLE, migrations, { autoSync: opts.autoSync ?? true });
  defineModels(db);
  return db;
}
