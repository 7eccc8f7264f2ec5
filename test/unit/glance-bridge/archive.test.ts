import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { pack as tarPack } from 'tar-stream';
import { dirname } from 'node:path';
import { readBody } from '../../../common/http-client.js';
import { archiveSegments, archiveSize, createDockerArchive, digestArchive, ustarHeader } from '../../../glance-bridge/archive/build.js';
import { ArchiveHasher } from '../../../glance-bridge/archive/hash.js';
import { BerthError } from '../../../common/errors.js';
import { BlobStore, sha256Digest } from '../../../glance-bridge/store/blobs.js';
import type { ImageBlobs } from '../../../glance-bridge/store/types.js';
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
    await assert.rejects(async () => {
      for await (const _ of createDockerArchive(store, blobs)) {
        /* drain */
      }
    }, /not in the store/);
  });

  it('hashes exactly the bytes it serves: the segments are the stream, and the digests are theirs', async () => {
    const served = await readBody(createDockerArchive(store, blobs));
    const parts: Buffer[] = [];
    for (const seg of archiveSegments(blobs)) parts.push('bytes' in seg ? seg.bytes : await readBody(await store.open(seg.digest)));
    assert.deepEqual(Buffer.concat(parts), served);
    const d = await digestArchive(store, blobs);
    assert.deepEqual(d, {
      size: served.length,
      md5: createHash('md5').update(served).digest('hex'),
      sha512: createHash('sha512').update(served).digest('hex'),
    });
  });

  it('serves the very bytes tar-stream packed for the same entries (checksums recorded before stay true)', async () => {
    const p = tarPack();
    const hexOf = (d: string) => d.slice(7);
    const config = await readBody(await store.open(blobs.config.digest));
    const manifest = JSON.stringify([
      { Config: `${hexOf(blobs.config.digest)}.json`, RepoTags: [], Layers: blobs.layers.map((l) => `${hexOf(l.digest)}/layer.tar`) },
    ]);
    const header = (name: string, size: number) => ({ name, size, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0, type: 'file' as const });
    p.entry(header('manifest.json', Buffer.byteLength(manifest)), manifest);
    p.entry(header(`${hexOf(blobs.config.digest)}.json`, config.length), config);
    for (const digest of new Set(blobs.layers.map((l) => l.digest))) {
      const body = await readBody(await store.open(digest));
      p.entry(header(`${hexOf(digest)}/layer.tar`, body.length), body);
    }
    p.finalize();
    assert.deepEqual(await readBody(createDockerArchive(store, blobs)), await readBody(p as unknown as Readable));
  });

  it('closes the blob it was reading when the reader goes away', async () => {
    const openFds = () => readdirSync('/proc/self/fd').length;
    const before = openFds();
    const big = Buffer.alloc(4 * 1024 * 1024, 5);
    const bigDigest = sha256Digest(big);
    await store.put(bigDigest, Readable.from([big]));
    const archive = createDockerArchive(store, {
      config: blobs.config,
      layers: [{ digest: bigDigest, media_type: 'application/vnd.oci.image.layer.v1.tar', size: big.length }],
    });
    let seen = 0;
    for await (const chunk of archive) {
      seen += (chunk as Buffer).length;
      if (seen > 2 * 1024 * 1024) break;
    }
    for (let i = 0; i < 50 && openFds() > before; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(openFds(), before);
  });

  it('encodes ustar headers as tar-stream does, including sizes past 8 GiB', () => {
    // tar-stream's own encoder (not exported), loaded by path for the comparison.
    const require = createRequire(import.meta.url);
    const headers = require(join(dirname(require.resolve('tar-stream')), 'headers.js')) as { encode(h: object): Buffer };
    const name = `${'ab'.repeat(32)}/layer.tar`;
    for (const size of [0, 1, 511, 512, 700, 8 * 1024 ** 3 - 1, 8 * 1024 ** 3, 1e12]) {
      const theirs = headers.encode({ name, size, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0, type: 'file' });
      assert.deepEqual(ustarHeader(name, size), theirs, `size ${size}`);
    }
    assert.throws(() => ustarHeader('x'.repeat(101), 1), /long-name header/);
  });

  it('ArchiveHasher: the same digests from its worker threads, each blob read only once it is ready', async () => {
    const expected = await digestArchive(store, blobs);
    const all = [blobs.config.digest, ...blobs.layers.map((l) => l.digest)];
    const hasher = new ArchiveHasher(store.root, blobs, all.slice(0, 2));
    try {
      const result = hasher.digest();
      const early = await Promise.race([result.then(() => 'done'), new Promise((r) => setTimeout(() => r('waiting'), 300))]);
      assert.equal(early, 'waiting', 'it waits for the layers not yet ready');
      for (const d of all.slice(2)) hasher.ready(d);
      assert.deepEqual(await result, expected);
    } finally {
      await hasher.close();
    }
  });

  it('ArchiveHasher: IMAGE_HASH_FAILED when a blob said to be ready is not there', async () => {
    await store.remove(blobs.layers[1]!.digest);
    const hasher = new ArchiveHasher(store.root, blobs, [blobs.config.digest, ...blobs.layers.map((l) => l.digest)]);
    try {
      await assert.rejects(
        hasher.digest(),
        (err: unknown) => err instanceof BerthError && err.code === 'IMAGE_HASH_FAILED' && /not in the store/.test(err.message),
      );
    } finally {
      await hasher.close();
    }
  });
  it('ArchiveHasher: IMAGE_HASH_FAILED, not a hang, when a hashing worker dies while waiting for a blob', async () => {
    const hasher = new ArchiveHasher(store.root, blobs, [blobs.config.digest]);
    try {
      const result = hasher.digest();
      // The sha512 worker ends (as a crashed thread would) while the layers are not yet ready.
      const workers = (hasher as unknown as { workers: { terminate(): Promise<number> }[] }).workers;
      await workers[1]!.terminate();
      await assert.rejects(result, (err: unknown) => err instanceof BerthError && err.code === 'IMAGE_HASH_FAILED' && /exited/.test(err.message));
    } finally {
      await hasher.close();
    }
  });

  it('ArchiveHasher: md5 and sha512 equal to node:crypto over the served archive of megabyte layers', async () => {
    const image = await buildImage({ layers: [{ big: 'z'.repeat(3 * 1024 * 1024 + 17) }, { other: 'w'.repeat(1024 * 1024) }] });
    for (const b of [image.config, ...image.layers]) await store.put(b.descriptor.digest, Readable.from([b.bytes]));
    const entry = (b: typeof image.config) => ({ digest: b.descriptor.digest, media_type: b.descriptor.mediaType, size: b.descriptor.size });
    const big: ImageBlobs = { config: entry(image.config), layers: image.layers.map(entry) };
    const served = await readBody(createDockerArchive(store, big), 64 * 1024 * 1024);
    const hasher = new ArchiveHasher(store.root, big, [big.config.digest, ...big.layers.map((l) => l.digest)]);
    try {
      assert.deepEqual(await hasher.digest(), {
        size: served.length,
        md5: createHash('md5').update(served).digest('hex'),
        sha512: createHash('sha512').update(served).digest('hex'),
      });
    } finally {
      await hasher.close();
    }
  });
});
