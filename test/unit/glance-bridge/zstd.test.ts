import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readBody } from '../../../common/http-client.js';
import { createDockerArchive } from '../../../glance-bridge/archive/build.js';
import { collectUnreferencedBlobs } from '../../../glance-bridge/gc.js';
import { IMPORT_ERROR_PROPERTY } from '../../../glance-bridge/import/importer.js';
import { buildImage, sha256, zstdCompress } from '../../fakes/image-builder.js';
import { createHarness, REPO, SOURCE, type Harness } from './harness.js';

describe('glance-bridge zstd layers', () => {
  let h: Harness;
  afterEach(async () => {
    await h?.close();
  });

  it('serves a zstd layer as its plain tar under the diff_id, and lets GC reclaim the compressed blob', async () => {
    h = await createHarness();
    const image = await buildImage({ oci: true, compression: ['gzip', 'zstd'], layers: [{ a: 'gzip layer' }, { 'b.bin': randomBytes(4096) }] });
    h.registry.addImage(REPO, 'v1', image);
    const done = await h.importer.importImage(SOURCE);
    assert.equal(done.status, 'active');
    const config = JSON.parse(image.config.bytes.toString('utf8')) as { rootfs: { diff_ids: string[] } };
    const blobs = (await h.images.blobsOf(done.id))!;
    assert.equal(blobs.layers[0]!.digest, image.layers[0]!.descriptor.digest);
    assert.equal(blobs.layers[1]!.digest, config.rootfs.diff_ids[1]);
    assert.equal(blobs.layers[1]!.media_type, 'application/vnd.oci.image.layer.v1.tar');
    const tar = await readBody(await h.blobs.open(blobs.layers[1]!.digest));
    assert.equal(sha256(tar), config.rootfs.diff_ids[1]);

    // The served archive holds the tar, and its recorded size and hashes describe that archive.
    const archive = await readBody(createDockerArchive(h.blobs, blobs));
    assert.equal(archive.length, done.size);
    assert.ok(archive.includes(tar));

    assert.deepEqual(await collectUnreferencedBlobs(h), [image.layers[1]!.descriptor.digest]);
  });

  it('does not fetch a zstd layer whose tar another image already brought', async () => {
    h = await createHarness();
    const shared = { 'lib/shared': randomBytes(2048) };
    const a = await buildImage({ oci: true, compression: ['zstd', 'gzip'], layers: [shared, { a: 'a' }] });
    const b = await buildImage({ oci: true, compression: ['zstd', 'gzip'], layers: [shared, { b: 'b' }] });
    h.registry.addImage(REPO, 'a', a);
    h.registry.addImage(REPO, 'b', b);
    await h.importer.importImage('registry.test:5000/team/app:a');
    const fetchesBefore = h.registry.blobFetches.length;
    const second = await h.importer.importImage('registry.test:5000/team/app:b');
    assert.equal(second.status, 'active');
    assert.deepEqual(h.registry.blobFetches.slice(fetchesBefore).sort(), [b.config.descriptor.digest, b.layers[1]!.descriptor.digest].sort());
  });

  it('kills the image for bad zstd, a tar that is not the diff_id, or no zstd command, leaving no partial files', async () => {
    h = await createHarness();
    // Swaps layer 0 for `bytes` with a true descriptor; the config still names the old diff_id.
    const withLayer = async (bytes: Buffer) => {
      const image = await buildImage({ oci: true, compression: ['zstd'], layers: [{ a: randomBytes(8).toString('hex') }] });
      image.layers[0] = { bytes, descriptor: { ...image.layers[0]!.descriptor, digest: sha256(bytes), size: bytes.length } };
      const manifest = JSON.parse(image.manifest.toString('utf8')) as { layers: unknown[] };
      manifest.layers = [image.layers[0].descriptor];
      image.manifest = Buffer.from(JSON.stringify(manifest));
      image.manifestDigest = sha256(image.manifest);
      return image;
    };
    h.registry.addImage(REPO, 'garbage', await withLayer(randomBytes(300)));
    h.registry.addImage(REPO, 'lying', await withLayer(zstdCompress(Buffer.alloc(1024))));

    const cases: [string, RegExp][] = [
      ['garbage', /LAYER_INVALID: .*not valid zstd/],
      ['lying', /DIGEST_MISMATCH: .*decompresses to/],
    ];
    for (const [tag, why] of cases) {
      const started = await h.importer.startImport(`registry.test:5000/team/app:${tag}`);
      const image = await started.done;
      assert.equal(image?.status, 'killed', tag);
      assert.match(image!.properties[IMPORT_ERROR_PROPERTY]!, why, tag);
    }
    assert.deepEqual(readdirSync(join(h.blobs.root, 'tmp')), []);
    await h.close();

    h = await createHarness({ zstdCommand: '/nonexistent/zstd' });
    const fine = await buildImage({ oci: true, compression: ['zstd'], layers: [{ a: 'a' }] });
    h.registry.addImage(REPO, 'v1', fine);
    const started = await h.importer.startImport(SOURCE);
    const image = await started.done;
    assert.equal(image?.status, 'killed');
    assert.match(image!.properties[IMPORT_ERROR_PROPERTY]!, /MANIFEST_UNSUPPORTED: .*zstd command is not installed/);
  });
});
