import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate, openDatabase, tuneSqlite } from '../../../common/db.js';
import { RegistryNames } from '../../../glance-bridge/registry-endpoint/names.js';
import { ImageRepository } from '../../../glance-bridge/store/images.js';
import { MIGRATIONS_TABLE, migrations } from '../../../glance-bridge/store/migrations.js';
import { countRows, listingCases, type ListingStore } from './listing-cases.js';

describe('glance-bridge listings and registry name lookups in SQL (SQLite)', () => {
  const dirs = new Map<ListingStore, string>();
  listingCases(
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'berth-listing-'));
      const db = openDatabase(`sqlite://${join(dir, 'images.sqlite')}`);
      await tuneSqlite(db);
      await migrate(db, MIGRATIONS_TABLE, migrations);
      const store = { db, images: new ImageRepository(db), ...countRows(db) };
      dirs.set(store, dir);
      return store;
    },
    async (s) => {
      await s.db.close();
      rmSync(dirs.get(s)!, { recursive: true, force: true });
    },
  );
});

describe('glance-bridge migration 0003 (listing indexes)', () => {
  it('fills docker_repository for images imported before it, so their names still resolve', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-listing-'));
    const db = openDatabase(`sqlite://${join(dir, 'images.sqlite')}`);
    try {
      await migrate(db, MIGRATIONS_TABLE, migrations.slice(0, 2));
      const now = new Date();
      await db.getQueryInterface().bulkInsert('images', [
        {
          id: '11111111-1111-4111-8111-111111111111',
          name: 'old',
          status: 'active',
          visibility: 'public',
          owner: 'berth',
          min_ram: 0,
          min_disk: 0,
          protected: false,
          tags: '[]',
          properties: JSON.stringify({ docker_image: 'registry.test:5000/team/app:v1' }),
          created_at: now,
          updated_at: now,
          deleted: false,
        },
      ]);
      await migrate(db, MIGRATIONS_TABLE, migrations);
      const found = await new RegistryNames(new ImageRepository(db)).imagesNamed('team/app');
      assert.deepEqual(
        found.map((i) => i.name),
        ['old'],
      );
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
