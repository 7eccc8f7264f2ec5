import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sequelize } from 'sequelize';
import { migrate, openDatabase, tuneSqlite } from '../../../common/db.js';
import { createLogger, silentLogger } from '../../../common/log.js';
import { Importer, type ImporterOptions } from '../../../glance-bridge/import/importer.js';
import { BlobStore } from '../../../glance-bridge/store/blobs.js';
import { ImageRepository } from '../../../glance-bridge/store/images.js';
import { MIGRATIONS_TABLE, migrations } from '../../../glance-bridge/store/migrations.js';
import { ImageUploader } from '../../../glance-bridge/import/upload.js';
import { FakeRegistryClient } from '../../fakes/registry-client.js';

/** A store on SQLite and a temp directory, with an importer over the fake registry. */
export interface Harness {
  dir: string;
  db: Sequelize;
  images: ImageRepository;
  blobs: BlobStore;
  registry: FakeRegistryClient;
  importer: Importer;
  uploader: ImageUploader;
  close(): Promise<void>;
}

export const REPO = { registry: 'registry.test:5000', repository: 'team/app' };
export const SOURCE = 'docker://registry.test:5000/team/app:v1';

export async function createHarness(options: Partial<ImporterOptions> & { maxImageBytes?: number } = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-images-'));
  const db = openDatabase(`sqlite://${join(dir, 'images.sqlite')}`);
  await tuneSqlite(db);
  await migrate(db, MIGRATIONS_TABLE, migrations);
  const images = new ImageRepository(db);
  const blobs = new BlobStore(join(dir, 'blobs'));
  await blobs.init();
  const registry = new FakeRegistryClient();
  const importer = new Importer({
    images,
    blobs,
    registry,
    log: process.env.DEBUG_GB ? createLogger('t') : silentLogger(),
    options: { defaultProject: 'berth', platform: { os: 'linux', architecture: 'amd64' }, maxParallelLayers: 4, maxBlobBytes: 64 * 1024 * 1024, ...options },
  });
  const uploader = new ImageUploader({ images, blobs, log: silentLogger(), maxImageBytes: options.maxImageBytes ?? 64 * 1024 * 1024 });
  return {
    dir,
    db,
    images,
    blobs,
    registry,
    importer,
    uploader,
    async close() {
      await importer.drain();
      await importer.hashes.drain();
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
