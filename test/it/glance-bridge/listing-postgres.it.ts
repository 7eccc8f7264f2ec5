import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { migrate, openDatabase } from '../../../common/db.js';
import { ImageRepository } from '../../../glance-bridge/store/images.js';
import { MIGRATIONS_TABLE, migrations } from '../../../glance-bridge/store/migrations.js';
import { countRows, listingCases } from '../../unit/glance-bridge/listing-cases.js';

const ADMIN_URL = process.env.BERTH_TEST_POSTGRES ?? 'postgres://berth:berth@127.0.0.1:5432/berth_test';

/** The image store's listings and name lookups on PostgreSQL: the same cases as on SQLite. */
describe('glance-bridge listings and registry name lookups in SQL (PostgreSQL)', function () {
  this.timeout(60_000);
  let admin: pg.Client;

  before(async () => {
    admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
  });
  after(async () => {
    await admin?.end();
  });

  const names = new Map<unknown, string>();
  listingCases(
    async () => {
      const dbName = `berth_it_${randomUUID().slice(0, 8)}`;
      await admin.query(`CREATE DATABASE ${dbName}`);
      const url = new URL(ADMIN_URL);
      url.pathname = `/${dbName}`;
      const db = openDatabase(url.toString());
      await migrate(db, MIGRATIONS_TABLE, migrations);
      const store = { db, images: new ImageRepository(db), ...countRows(db) };
      names.set(store, dbName);
      return store;
    },
    async (s) => {
      await s.db.close();
      await admin.query(`DROP DATABASE IF EXISTS ${names.get(s)!}`).catch(() => undefined);
    },
  );
});
