import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import sinon from 'sinon';
import { readBody } from '../../../common/http-client.js';
import { silentLogger } from '../../../common/log.js';
import { createDockerArchive, type ArchiveDigest } from '../../../glance-bridge/archive/build.js';
import { exportImage } from '../../../glance-bridge/archive/export.js';
import type { GlanceImage, ImageService } from '../../../glance-bridge/client/types.js';
import { DeferredHashes } from '../../../glance-bridge/import/deferred-hashes.js';
import type { ImageRecord } from '../../../glance-bridge/store/types.js';
import { buildImage } from '../../fakes/image-builder.js';
import { deferred } from '../../support/waits.js';
import { call, startApiServer } from './api-server.js';
import { createHarness, REPO, SOURCE, type Harness } from './harness.js';

/** What Glance's hashes of `image` must be: those of the archive the store serves. */
async function servedHashes(h: Harness, image: ImageRecord): Promise<{ size: number; md5: string; sha512: string }> {
  const served = await readBody(createDockerArchive(h.blobs, (await h.images.blobsOf(image.id))!));
  return { size: served.length, md5: createHash('md5').update(served).digest('hex'), sha512: createHash('sha512').update(served).digest('hex') };
}

/** Forgets the recorded hashes of `id`, as an image in the window has none. */
async function clearHashes(h: Harness, id: string): Promise<void> {
  await h.db.query('UPDATE images SET checksum = NULL, os_hash_algo = NULL, os_hash_value = NULL WHERE id = ?', { replacements: [id] });
}

/** An imported active image whose hashes are not recorded yet, as a stop in the window leaves it. */
async function activeWithoutHashes(h: Harness): Promise<ImageRecord> {
  h.registry.addImage(REPO, 'v1', await buildImage({ layers: [{ a: 'x'.repeat(5000) }, { b: 'y' }] }));
  const image = await h.importer.importImage(SOURCE);
  await clearHashes(h, image.id);
  return h.images.require(image.id);
}

describe('glance-bridge: Glance hashes recorded after active (active_before_hashes)', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await createHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  it('makes an import hashed in workers active with its size, then records the hashes of the served archive', async () => {
    const w = await createHarness({ hashInWorkersFrom: 0, activeBeforeHashes: true });
    try {
      w.registry.addImage(REPO, 'v1', await buildImage({ layers: [{ a: 'x'.repeat(50_000) }, { b: 'y' }] }));
      const active = await w.importer.importImage(SOURCE);
      assert.equal(active.status, 'active');
      const want = await servedHashes(w, active);
      assert.equal(active.size, want.size);
      await w.importer.hashes.settle(active.id);
      const known = await w.images.require(active.id);
      assert.deepEqual([known.checksum, known.os_hash_algo, known.os_hash_value], [want.md5, 'sha512', want.sha512]);
      assert.equal(w.importer.hashes.count, 0);
    } finally {
      await w.close();
    }
  });

  it('keeps hashing before active when active_before_hashes is off, and for images hashed on the event loop', async () => {
    h.registry.addImage(REPO, 'v1', await buildImage());
    const small = await h.importer.importImage(SOURCE);
    assert.match(small.checksum ?? '', /^[0-9a-f]{32}$/);
    const w = await createHarness({ hashInWorkersFrom: 0, activeBeforeHashes: false });
    try {
      w.registry.addImage(REPO, 'v1', await buildImage({ layers: [{ a: 'z'.repeat(5000) }] }));
      const viaWorkers = await w.importer.importImage(SOURCE);
      assert.match(viaWorkers.os_hash_value ?? '', /^[0-9a-f]{128}$/);
    } finally {
      await w.close();
    }
  });

  it('serves an image in the window without Content-MD5 and with null hashes, then with both once recorded', async () => {
    const image = await activeWithoutHashes(h);
    const hashes = new DeferredHashes({ images: h.images, blobs: h.blobs, log: silentLogger() });
    const digest = deferred<ArchiveDigest>();
    const done = sinon.fake.resolves(undefined);
    hashes.track(image.id, image.size!, digest.promise, done);
    const api = await startApiServer(h);
    try {
      const before = await call(api.base, 'GET', `/v2/images/${image.id}`);
      assert.deepEqual([before.json.status, before.json.checksum, before.json.os_hash_value], ['active', null, null]);
      const file = await call(api.base, 'GET', `/v2/images/${image.id}/file`);
      assert.equal(file.status, 200);
      assert.equal(file.headers.get('content-md5'), null);
      const want = await servedHashes(h, image);
      assert.equal(createHash('md5').update(file.bytes).digest('hex'), want.md5);
      digest.resolve({ size: want.size, md5: want.md5, sha512: want.sha512 });
      await hashes.settle(image.id);
      assert.equal(done.callCount, 1, 'the workers are stopped once the digest is in');
      const after = await call(api.base, 'GET', `/v2/images/${image.id}`);
      assert.deepEqual([after.json.checksum, after.json.os_hash_algo, after.json.os_hash_value], [want.md5, 'sha512', want.sha512]);
      assert.equal((await call(api.base, 'GET', `/v2/images/${image.id}/file`)).headers.get('content-md5'), want.md5);
    } finally {
      await api.close();
    }
  });

  it('hashes the stored blobs again when the workers fail, and records nothing of a size other than the one recorded', async () => {
    const image = await activeWithoutHashes(h);
    const want = await servedHashes(h, image);
    const hashes = new DeferredHashes({ images: h.images, blobs: h.blobs, log: silentLogger() });
    hashes.track(image.id, image.size!, Promise.reject(new Error('the hashing worker exited with code 1')), async () => undefined);
    await hashes.drain();
    assert.equal((await h.images.require(image.id)).checksum, want.md5);

    await clearHashes(h, image.id);
    hashes.track(image.id, image.size!, Promise.resolve({ size: image.size! + 1, md5: 'a'.repeat(32), sha512: 'b'.repeat(128) }), async () => undefined);
    await hashes.drain();
    assert.equal((await h.images.require(image.id)).checksum, null);
  });

  it('never overwrites recorded hashes, nor writes to a deleted image', async () => {
    const image = await activeWithoutHashes(h);
    const fake = { checksum: 'c'.repeat(32), os_hash_algo: 'sha512', os_hash_value: 'd'.repeat(128) };
    assert.equal(await h.images.setHashes(image.id, fake), true);
    assert.equal(await h.images.setHashes(image.id, { ...fake, checksum: 'e'.repeat(32) }), false);
    assert.equal((await h.images.require(image.id)).checksum, fake.checksum);
    await clearHashes(h, image.id);
    await h.images.markDeleted(image.id);
    assert.equal(await h.images.setHashes(image.id, fake), false);
  });

  it('hashes at start the active images a stop left without hashes, and nothing else', async () => {
    const image = await activeWithoutHashes(h);
    const queued = await h.images.create({ name: 'no data', owner: 'berth', visibility: 'private' } as never);
    assert.deepEqual(await h.images.activeWithoutHashes(), [image.id]);
    const hashes = new DeferredHashes({ images: h.images, blobs: h.blobs, log: silentLogger() });
    assert.equal(await hashes.recover(), 1);
    await hashes.settle(image.id);
    assert.equal((await h.images.require(image.id)).checksum, (await servedHashes(h, image)).md5);
    assert.equal((await h.images.require(queued.id)).checksum, null);
    assert.deepEqual(await h.images.activeWithoutHashes(), []);
  });

  it('records nothing once stopped, and stops the workers it holds', async () => {
    const image = await activeWithoutHashes(h);
    const hashes = new DeferredHashes({ images: h.images, blobs: h.blobs, log: silentLogger() });
    const digest = deferred<ArchiveDigest>();
    const stopWorkers = sinon.fake(async () => digest.reject(new Error('terminated')));
    hashes.track(image.id, image.size!, digest.promise, stopWorkers);
    await hashes.stop();
    assert.equal(stopWorkers.called, true);
    assert.equal((await h.images.require(image.id)).checksum, null);
    await hashes.settle(image.id);
    assert.equal((await h.images.require(image.id)).checksum, null);
  });

  it('makes an export wait for the hashes, so the remote copy is checked against them', async () => {
    const image = await activeWithoutHashes(h);
    const want = await servedHashes(h, image);
    const hashes = new DeferredHashes({ images: h.images, blobs: h.blobs, log: silentLogger() });
    const digest = deferred<ArchiveDigest>();
    hashes.track(image.id, image.size!, digest.promise, async () => undefined);
    const remote: GlanceImage = { id: 'remote-1', status: 'queued', size: null } as unknown as GlanceImage;
    const uploaded: GlanceImage = { ...remote, status: 'active', size: want.size, checksum: 'f'.repeat(32), docker_image_id: image.properties.docker_image_id };
    const target = {
      createImage: sinon.fake.resolves(remote),
      uploadImage: sinon.fake(async (_id: string, stream: NodeJS.ReadableStream) => {
        for await (const _ of stream) void _;
        return uploaded;
      }),
      deleteImage: sinon.fake.resolves(undefined),
      setProperties: sinon.fake.resolves(uploaded),
    } as unknown as ImageService;
    const exporting = exportImage({ images: h.images, blobs: h.blobs, log: silentLogger(), hashes }, target, image.id);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal((target.createImage as sinon.SinonSpy).callCount, 0, 'nothing is sent before the hashes are known');
    digest.resolve({ size: want.size, md5: want.md5, sha512: want.sha512 });
    // The remote's md5 differs from the one now recorded: the copy is refused and deleted.
    await assert.rejects(exporting, /checksum f{32} instead of [0-9a-f]{32}/);
    assert.equal((target.deleteImage as sinon.SinonSpy).callCount, 1);
  });
});
