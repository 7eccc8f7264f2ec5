import type { Sequelize } from 'sequelize';
import { openDatabase, tuneSqlite, migrate } from '../../common/db.js';
import { migrations } from './migrations.js';
import { defineModels } from './models.js';

export * from './models.js';

/** Opens the driver's database, applies pending migrations and binds the models. */
export async function openDriverDatabase(connection: string): Promise<Sequelize> {
  const db = openDatabase(connection);
  // Commits are made durable in groups, before a message is acknowledged or a notification sent.
  await tuneSqlite(db, { groupCommit: true });
  await migrate(db, 'berth_driver_migrations', migrations);
  defineModels(db);
  return db;
}
