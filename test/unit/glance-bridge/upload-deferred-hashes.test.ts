import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { silentLogger } from '../../../common/log.js';
import { DeferredHashes } from '../../../glance-bridge/import/deferred-hashes.js';
import { ImageUploader } from '../../../glance-bridge/import/upload.js';
import { buildDockerSave, buildImage } from '../../fakes/image-builder.js';
import { createHarness, type Harness } from './harness.js';
import { waitUntil } from '../../support/waits.js';

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const sha512 = (b: Buffer) => createHash('sha512').update(b).digest('hex');
const FROM = 64 * 1024;

describe('glance-bridge upload with active_before_hashes (a large upload turns active before its md5 and sha512)', () => {
  let h: Harness;
  let uploader: ImageUploader;

  beforeEach(async () => {
    h = await createHarness({ maxImageBytes: 4 * 1024 * 1024 });
    uploader = new ImageUploader({
      images: h.images,
      blobs: h.blobs,
      log: silentLogger(),
      maxImageBytes: 4 * 1024 * 1024,
      deferHashes: { hashes: h.importer.hashes, from: FROM },
    });
  });
  afterEach(async () => {
    await h.close();
  });

  const queued = async (container_format = 'bare') => (await h.images.create({ container_format, disk_format: 'raw' })).id;
  const chunksOf = (data: Buffer, n = 8) => Array.from({ length: n }, (_, i) => data.subarray((i * data.length) / n, ((i + 1) * data.length) / n));

  it('a chunked upload past the threshold: active with its size and no hashes, then the stored file’s md5 and sha512', async () => {
    const data = randomBytes(3 * FROM + 17);
    const id = await queued();
    const active = await uploader.upload(id, Readable.from(chunksOf(data)), null);
    assert.equal(active.status, 'active');
    assert.equal(active.size, data.length);
    assert.equal(active.checksum, null);
    await h.importer.hashes.drain();
    const image = await h.images.require(id);
    assert.equal(image.checksum, md5(data));
    assert.equal(image.os_hash_algo, 'sha512');
    assert.equal(image.os_hash_value, sha512(data));
  });

  it('an upload declared that large defers from the first byte; a smaller one is hashed on the way in', async () => {
    const big = randomBytes(FROM);
    const bigId = await queued();
    assert.equal((await uploader.upload(bigId, Readable.from([big]), big.length)).checksum, null);
    const small = randomBytes(FROM - 1);
    const smallId = await queued();
    const smallImage = await uploader.upload(smallId, Readable.from(chunksOf(small)), null);
    assert.equal(smallImage.checksum, md5(small));
    assert.equal(smallImage.os_hash_value, sha512(small));
    await h.importer.hashes.drain();
    assert.equal((await h.images.require(bigId)).os_hash_value, sha512(big));
  });

  it('a docker archive still gets its docker_image_id from the config it carries', async () => {
    const built = await buildImage({ layers: [{ 'blob.bin': randomBytes(2 * FROM) }] });
    const archive = await buildDockerSave(built);
    assert.ok(archive.length >= FROM);
    const id = await queued('docker');
    const active = await uploader.upload(id, Readable.from(chunksOf(archive)), null);
    assert.equal(active.properties.docker_image_id, built.config.descriptor.digest);
    await h.importer.hashes.drain();
    assert.equal((await h.images.require(id)).checksum, md5(archive));
  });

  it('an uploaded image a stop left without hashes is hashed from its file at the next start', async () => {
    const data = randomBytes(2 * FROM);
    const id = await queued();
    await uploader.upload(id, Readable.from(chunksOf(data)), null);
    await h.importer.hashes.drain();
    // As if the process had stopped before the workers finished.
    await h.db.query('UPDATE images SET checksum = NULL, os_hash_algo = NULL, os_hash_value = NULL WHERE id = ?', { replacements: [id] });
    assert.deepEqual(await h.images.activeWithoutHashes(), [id]);
    const next = new DeferredHashes({ images: h.images, blobs: h.blobs, log: silentLogger() });
    assert.equal(await next.recover(), 1);
    // recover() hashes in the background.
    const image = await waitUntil(async () => ((await h.images.require(id)).checksum ? h.images.require(id) : undefined), 10_000, 'hashes recorded', 20);
    await next.drain();
    assert.equal(image.checksum, md5(data));
    assert.equal(image.os_hash_value, sha512(data));
  });
});
