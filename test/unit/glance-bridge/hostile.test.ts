import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { BerthError } from '../../../common/errors.js';
import { IMPORT_ERROR_PROPERTY } from '../../../glance-bridge/import/importer.js';
import { MediaType } from '../../../glance-bridge/registry/manifest.js';
import { buildImage, sha256, type BuiltImage, type Compression, type RawEntry } from '../../fakes/image-builder.js';
import { createHarness, REPO, type Harness } from './harness.js';

const file = (name: string, content: string | Buffer = 'x'): RawEntry => ({ header: { name, type: 'file', mode: 0o644, mtime: new Date(0) }, content });
const symlink = (name: string, linkname: string): RawEntry => ({ header: { name, type: 'symlink', linkname, mode: 0o777, mtime: new Date(0) } });
const hardlink = (name: string, linkname: string): RawEntry => ({ header: { name, type: 'link', linkname, mode: 0o644, mtime: new Date(0) } });
const dir = (name: string): RawEntry => ({ header: { name, type: 'directory', mode: 0o755, mtime: new Date(0) } });

/** A manifest over `layers` descriptors that need not exist: refused before any fetch. */
function manifestOnly(h: Harness, tag: string, layers: { size: number }[], configSize = 100): void {
  const config = { mediaType: MediaType.dockerConfig, digest: sha256(Buffer.from(tag)), size: configSize };
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.dockerManifest,
      config,
      layers: layers.map((l, i) => ({
        mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
        digest: sha256(Buffer.from(`${tag}-${i}`)),
        size: l.size,
      })),
    }),
  );
  h.registry.addManifest(REPO, tag, bytes, MediaType.dockerManifest);
}

describe('glance-bridge hostile input', () => {
  let h: Harness;
  afterEach(async () => {
    await h?.close();
  });

  async function importKilled(tag: string, image: BuiltImage): Promise<string> {
    h.registry.addImage(REPO, tag, image);
    const started = await h.importer.startImport(`registry.test:5000/team/app:${tag}`);
    const done = await started.done;
    assert.equal(done?.status, 'killed', tag);
    // zstd layers are fetched as they come and refused as the tar they convert to.
    const diffIds = (JSON.parse(image.config.bytes.toString('utf8')) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids;
    for (const [i, layer] of image.layers.entries()) {
      const served = layer.descriptor.mediaType.endsWith('+zstd') ? diffIds[i]! : layer.descriptor.digest;
      assert.equal(await h.blobs.has(served), false, `${tag}: layer stored`);
    }
    assert.deepEqual(readdirSync(join(h.blobs.root, 'tmp')), [], tag);
    return done.properties[IMPORT_ERROR_PROPERTY]!;
  }

  it('refuses layers with ../, absolute paths, hard links out of the root, writes through symlinks and bad whiteouts', async () => {
    h = await createHarness();
    const cases: [string, RawEntry[]][] = [
      ['dotdot', [file('../../etc/passwd')]],
      ['inner-dotdot', [dir('usr'), file('usr/../../root/.ssh/authorized_keys')]],
      ['absolute', [file('/etc/passwd')]],
      ['hardlink-out', [hardlink('shadow', '../../etc/shadow')]],
      ['hardlink-abs', [hardlink('shadow', '/etc/shadow')]],
      ['symlink-write', [symlink('evil', '/etc'), file('evil/cron.d/job')]],
      ['whiteout-parent', [dir('a'), file('a/.wh..')]],
    ];
    const compressions: Compression[] = ['gzip', 'none', 'zstd'];
    for (const [i, [tag, entries]] of cases.entries()) {
      const compression = compressions[i % compressions.length]!;
      const image = await buildImage({ oci: true, compression: [compression], rawLayers: [[file(`id-${randomBytes(4).toString('hex')}`), ...entries]] });
      const why = await importKilled(tag, image);
      assert.match(why, /^LAYER_UNSAFE: /, `${tag} (${compression}): ${why}`);
    }
  });

  it('accepts what real layers contain: absolute symlink targets, links inside, whiteouts, opaque dirs', async () => {
    h = await createHarness();
    const image = await buildImage({
      oci: true,
      compression: ['gzip'],
      rawLayers: [
        [
          dir('bin'),
          file('bin/busybox'),
          symlink('bin/sh', '/bin/busybox'),
          hardlink('bin/ash', 'bin/busybox'),
          dir('etc'),
          file('etc/.wh.motd'),
          dir('var/cache'),
          file('var/cache/.wh..wh..opq'),
          symlink('lib', 'usr/lib'),
          file('./etc/hostname'),
        ],
      ],
    });
    h.registry.addImage(REPO, 'ok', image);
    const done = await h.importer.importImage('registry.test:5000/team/app:ok');
    assert.equal(done.status, 'active');
  });

  it('stops decompression bombs by absolute size and by ratio', async () => {
    h = await createHarness({ scan: { maxUncompressedBytes: 1024 * 1024, maxRatio: 100 } });
    const big = await buildImage({ oci: true, compression: ['gzip'], rawLayers: [[file('zeros', Buffer.alloc(2 * 1024 * 1024))]] });
    assert.match(await importKilled('over-size', big), /^BLOB_TOO_LARGE: .*unpacks to more than 1048576 bytes/);
    await h.close();

    h = await createHarness({ scan: { maxUncompressedBytes: 1024 ** 3, maxRatio: 100 } });
    const bomb = await buildImage({ oci: true, compression: ['gzip'], rawLayers: [[file('zeros', Buffer.alloc(70 * 1024 * 1024))]] });
    assert.ok(bomb.layers[0]!.bytes.length < 1024 * 1024);
    assert.match(await importKilled('bomb', bomb), /^BLOB_TOO_LARGE: .*more than 100 times its compressed size/);
    const zstdBomb = await buildImage({ oci: true, compression: ['zstd'], rawLayers: [[file('zeros', Buffer.alloc(70 * 1024 * 1024))]] });
    assert.match(await importKilled('zstd-bomb', zstdBomb), /^BLOB_TOO_LARGE: /);
  });

  it('refuses layers that are not what their media type says', async () => {
    h = await createHarness();
    const image = await buildImage({ oci: true, compression: ['gzip'], layers: [{ a: 'a' }] });
    const notGzip = randomBytes(4096);
    const manifest = JSON.parse(image.manifest.toString('utf8')) as { layers: { digest: string; size: number }[] };
    manifest.layers[0] = { ...manifest.layers[0]!, digest: sha256(notGzip), size: notGzip.length };
    image.manifest = Buffer.from(JSON.stringify(manifest));
    image.manifestDigest = sha256(image.manifest);
    image.layers[0] = { bytes: notGzip, descriptor: { ...image.layers[0]!.descriptor, digest: sha256(notGzip), size: notGzip.length } };
    assert.match(await importKilled('not-gzip', image), /^LAYER_INVALID: .*not a valid gzip-compressed tar/);
    const truncatedTar = await buildImage({ oci: true, compression: ['gzip'], layers: [{ a: 'a' }] });
    const cut = gzipSync(Buffer.alloc(700, 1));
    const m2 = JSON.parse(truncatedTar.manifest.toString('utf8')) as { layers: { digest: string; size: number }[] };
    m2.layers[0] = { ...m2.layers[0]!, digest: sha256(cut), size: cut.length };
    truncatedTar.manifest = Buffer.from(JSON.stringify(m2));
    truncatedTar.manifestDigest = sha256(truncatedTar.manifest);
    truncatedTar.layers[0] = { bytes: cut, descriptor: { ...truncatedTar.layers[0]!.descriptor, digest: sha256(cut), size: cut.length } };
    assert.match(await importKilled('garbage-tar', truncatedTar), /^LAYER_INVALID: /);
  });

  it('kills the image on a truncated download, with nothing visible', async () => {
    h = await createHarness();
    const image = await buildImage();
    const layer = image.layers[1]!;
    h.registry.addImage(REPO, 'cut', image);
    h.registry.blobs.set(layer.descriptor.digest, layer.bytes.subarray(0, layer.bytes.length - 100));
    const started = await h.importer.startImport('registry.test:5000/team/app:cut');
    const done = await started.done;
    assert.equal(done?.status, 'killed');
    assert.match(done!.properties[IMPORT_ERROR_PROPERTY]!, /^BLOB_SIZE_MISMATCH: /);
    assert.equal(await h.blobs.has(layer.descriptor.digest), false);
  });

  it('refuses manifests declaring countless layers or huge blobs before creating an image', async () => {
    h = await createHarness({ maxLayers: 128, maxImageBytes: 10 * 1024 * 1024, maxBlobBytes: 4 * 1024 * 1024 });
    manifestOnly(
      h,
      'countless',
      Array.from({ length: 129 }, () => ({ size: 10 })),
    );
    manifestOnly(h, 'huge-blob', [{ size: 2 ** 50 }]);
    manifestOnly(
      h,
      'huge-total',
      Array.from({ length: 4 }, () => ({ size: 3 * 1024 * 1024 })),
    );
    const expected: Record<string, [string, RegExp]> = {
      countless: ['MANIFEST_TOO_LARGE', /129 layers; at most 128/],
      'huge-blob': ['BLOB_TOO_LARGE', /declares 1125899906842624 bytes/],
      'huge-total': ['MANIFEST_TOO_LARGE', /declares 12583012 bytes/],
    };
    for (const [tag, [code, message]] of Object.entries(expected)) {
      await assert.rejects(
        h.importer.startImport(`registry.test:5000/team/app:${tag}`),
        (err: unknown) => err instanceof BerthError && err.code === code && message.test(err.message),
        tag,
      );
    }
    assert.deepEqual(h.registry.blobFetches, []);
    assert.deepEqual((await h.images.list({ filters: {}, limit: 10 })).images, []);
  });
});
