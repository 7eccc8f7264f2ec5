import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { archiveSize, createDockerArchive, digestArchive } from '../../../glance-bridge/archive.js';
import { BlobStore } from '../../../glance-bridge/store/blobs.js';
import type { ImageBlobs } from '../../../glance-bridge/store/images.js';
import { buildImage } from '../../fakes/image-builder.js';

describe('glance-bridge docker archive', () => {
  let dir: string;
  let store: BlobStore;
  let blobs: ImageBlobs;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'berth-archive-'));
    store = new BlobStore(dir);
    await store.init();
    const image = await buildImage({ layers: [{ a: 'x'.repeat(700) }, { b: 'y' }, { a: 'x'.repeat(700) }] });
    for (const b of [image.config, ...image.layers]) await store.put(b.descriptor.digest, Readable.from([b.bytes]));
    const entry = (b: typeof image.config) => ({ digest: b.descriptor.digest, media_type: b.descriptor.mediaType, size: b.descriptor.size });
    blobs = { config: entry(image.config), layers: image.layers.map(entry) };
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('has exactly the precomputed size and the same hashes every time (repeated layers written once)', async () => {
    const first = await digestArchive(store, blobs);
    assert.equal(first.size, archiveSize(blobs));
    assert.deepEqual(await digestArchive(store, blobs), first);
  });

  it('ends the stream with an error when a blob is missing', async () => {
    await store.remove(blobs.layers[1]!.digest);
    await assert.rejects(async () => { for await (const _ of createDockerArchive(store, blobs)) { /* drain */ } }, /not in the store/);
  });
});
