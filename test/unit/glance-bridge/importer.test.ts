import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '../../../common/errors.js';
import { readBody } from '../../../common/http-client.js';
import { createDockerArchive } from '../../../glance-bridge/archive/build.js';
import { collectUnreferencedBlobs } from '../../../glance-bridge/gc.js';
import { IMPORT_ERROR_PROPERTY } from '../../../glance-bridge/import/importer.js';
import { buildImage, buildIndex, sha256 } from '../../fakes/image-builder.js';
import { createHarness, REPO, SOURCE, type Harness } from './harness.js';

async function rejectsWithCode(p: Promise<unknown>, code: string): Promise<BerthError> {
  let caught: unknown;
  await assert.rejects(p, (err: unknown) => {
    caught = err;
    return err instanceof BerthError && err.code === code;
  });
  return caught as BerthError;
}

describe('glance-bridge Importer', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await createHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  it('imports an image: active, docker formats, the three docker properties, archive hashes', async () => {
    const image = await buildImage();
    h.registry.addImage(REPO, 'v1', image);
    const done = await h.importer.importImage(SOURCE, { name: 'app' });
    assert.equal(done.status, 'active');
    assert.equal(done.name, 'app');
    assert.equal(done.container_format, 'docker');
    assert.equal(done.disk_format, 'raw');
    assert.equal(done.owner, 'berth');
    assert.equal(done.properties.docker_image, SOURCE);
    assert.equal(done.properties.docker_digest, image.manifestDigest);
    assert.equal(done.properties.docker_image_id, image.config.descriptor.digest);
    assert.match(done.checksum ?? '', /^[0-9a-f]{32}$/);
    assert.equal(done.os_hash_algo, 'sha512');
    assert.match(done.os_hash_value ?? '', /^[0-9a-f]{128}$/);
    const served = await readBody(createDockerArchive(h.blobs, (await h.images.blobsOf(done.id))!));
    assert.equal(done.size, served.length);
    assert.equal(done.checksum, createHash('md5').update(served).digest('hex'));
    assert.equal(done.os_hash_value, createHash('sha512').update(served).digest('hex'));
    for (const blob of [image.config, ...image.layers]) assert.equal(await h.blobs.has(blob.descriptor.digest), true);
    const blobs = await h.images.blobsOf(done.id);
    assert.deepEqual(
      blobs?.layers.map((l) => l.digest),
      image.layers.map((l) => l.descriptor.digest),
    );
  });

  it('hashes in worker threads from [hashInWorkersFrom] bytes on, to the same checksum and sha512', async () => {
    const image = await buildImage({ layers: [{ a: 'x'.repeat(5000) }, { b: 'y' }] });
    h.registry.addImage(REPO, 'v1', image);
    const small = await h.importer.importImage(SOURCE);
    const w = await createHarness({ hashInWorkersFrom: 0 });
    try {
      w.registry.addImage(REPO, 'v1', image);
      const viaWorkers = await w.importer.importImage(SOURCE);
      assert.deepEqual([viaWorkers.size, viaWorkers.checksum, viaWorkers.os_hash_value], [small.size, small.checksum, small.os_hash_value]);
      const served = await readBody(createDockerArchive(w.blobs, (await w.images.blobsOf(viaWorkers.id))!));
      assert.equal(viaWorkers.checksum, createHash('md5').update(served).digest('hex'));
    } finally {
      await w.close();
    }
  });

  it('returns the existing image for content already imported, fetching no blobs', async () => {
    const image = await buildImage();
    h.registry.addImage(REPO, 'v1', image);
    const first = await h.importer.importImage(SOURCE);
    const fetches = h.registry.blobFetches.length;
    const second = await h.importer.importImage(`registry.test:5000/team/app@${image.manifestDigest}`);
    assert.equal(second.id, first.id);
    assert.equal(h.registry.blobFetches.length, fetches);
  });

  it("gives each owner its own image of the same content, sharing the blobs, never another owner's image", async () => {
    const image = await buildImage();
    h.registry.addImage(REPO, 'v1', image);
    const alices = await h.importer.importImage(SOURCE, { owner: 'alice', visibility: 'community' });
    const fetches = h.registry.blobFetches.length;
    const bobs = await h.importer.importImage(SOURCE, { owner: 'bob', visibility: 'shared' });
    assert.notEqual(bobs.id, alices.id);
    assert.deepEqual([bobs.owner, bobs.visibility, bobs.status], ['bob', 'shared', 'active']);
    assert.equal(bobs.properties.docker_digest, alices.properties.docker_digest);
    // Alice's image is readable by Bob (community): its blobs serve him with nothing fetched.
    assert.equal(h.registry.blobFetches.length, fetches);
    assert.equal((await h.importer.importImage(SOURCE, { owner: 'bob' })).id, bobs.id);
    assert.equal((await h.importer.importImage(SOURCE, { owner: 'alice' })).id, alices.id);
  });

  it("makes a project's source serve the bytes of blobs it only shares with images it may not read", async () => {
    const image = await buildImage();
    h.registry.addImage(REPO, 'v1', image);
    const alices = await h.importer.importImage(SOURCE, { owner: 'alice', visibility: 'private' });
    const digests = [image.config, ...image.layers].map((b) => b.descriptor.digest);
    // A registry of Bob's naming Alice's private blobs in a manifest, without having their bytes.
    const evil = { registry: 'evil.test:5000', repository: 'bob/app' };
    h.registry.addManifest(evil, 'v1', image.manifest, image.mediaType);
    const kept = new Map(h.registry.blobs);
    h.registry.blobs.clear();
    const started = await h.importer.startImport('docker://evil.test:5000/bob/app:v1', { owner: 'bob', visibility: 'private' });
    const bobs = await started.done;
    assert.equal(bobs?.status, 'killed');
    assert.match(bobs?.properties[IMPORT_ERROR_PROPERTY] ?? '', /BLOB_NOT_FOUND/);
    assert.equal(await h.images.manifestOf(bobs!.id), null);
    // A source that has the bytes proves it by serving them: fetched again, nothing new stored.
    for (const [digest, bytes] of kept) h.registry.blobs.set(digest, bytes);
    const fetches = h.registry.blobFetches.length;
    const proved = await h.importer.importImage('docker://evil.test:5000/bob/app:v1', { owner: 'bob', visibility: 'private' });
    assert.equal(proved.status, 'active');
    assert.deepEqual(h.registry.blobFetches.slice(fetches).sort(), [...digests].sort());
    assert.equal(proved.properties.docker_image_id, alices.properties.docker_image_id);
  });

  it("does not let a project's concurrent imports vouch for each other's unproven blobs", async () => {
    const image = await buildImage();
    h.registry.addImage(REPO, 'v1', image);
    await h.importer.importImage(SOURCE, { owner: 'alice', visibility: 'private' });
    // Two manifests of Bob's (different digests, so two images) naming Alice's blobs, whose bytes
    // Bob's registry does not have.
    const evil = { registry: 'evil.test:5000', repository: 'bob/app' };
    const doc = JSON.parse(image.manifest.toString('utf8')) as Record<string, unknown>;
    h.registry.addManifest(evil, 'one', Buffer.from(JSON.stringify({ ...doc, annotations: { n: '1' } })), image.mediaType);
    h.registry.addManifest(evil, 'two', Buffer.from(JSON.stringify({ ...doc, annotations: { n: '2' } })), image.mediaType);
    h.registry.blobs.clear();
    const started = await Promise.all(['one', 'two'].map((tag) => h.importer.startImport(`docker://evil.test:5000/bob/app:${tag}`, { owner: 'bob' })));
    assert.notEqual(started[0]!.image.id, started[1]!.image.id);
    const done = await Promise.all(started.map((s) => s.done));
    assert.deepEqual(
      done.map((i) => i?.status),
      ['killed', 'killed'],
    );
  });

  it('fetches a layer shared by two images once', async () => {
    const base = { 'bin/base': 'shared base layer' };
    const a = await buildImage({ layers: [base, { 'a.txt': 'a' }] });
    const b = await buildImage({ layers: [base, { 'b.txt': 'b' }] });
    h.registry.addImage(REPO, 'a', a);
    h.registry.addImage(REPO, 'b', b);
    await h.importer.importImage('registry.test:5000/team/app:a');
    await h.importer.importImage('registry.test:5000/team/app:b');
    const shared = a.layers[0]!.descriptor.digest;
    assert.equal(b.layers[0]!.descriptor.digest, shared);
    assert.equal(h.registry.blobFetches.filter((d) => d === shared).length, 1);
  });

  it('shares one download between concurrent imports of images with a common layer', async () => {
    const base = { 'bin/base': 'shared base layer, concurrent' };
    const a = await buildImage({ layers: [base, { 'a.txt': 'a' }] });
    const b = await buildImage({ layers: [base, { 'b.txt': 'b' }] });
    h.registry.addImage(REPO, 'a', a);
    h.registry.addImage(REPO, 'b', b);
    let open!: () => void;
    h.registry.gate = new Promise((resolve) => {
      open = resolve;
    });
    const ia = h.importer.importImage('registry.test:5000/team/app:a');
    const ib = h.importer.importImage('registry.test:5000/team/app:b');
    await new Promise((r) => setTimeout(r, 50));
    open();
    const [ra, rb] = await Promise.all([ia, ib]);
    assert.equal(ra.status, 'active');
    assert.equal(rb.status, 'active');
    assert.equal(h.registry.blobFetches.filter((d) => d === a.layers[0]!.descriptor.digest).length, 1);
  });

  it("lets blob GC remove a deleted image's layers but keep those another image shares", async () => {
    const base = { 'bin/base': 'shared by both' };
    const a = await buildImage({ layers: [base, { 'a.txt': 'only a' }] });
    const b = await buildImage({ layers: [base, { 'b.txt': 'only b' }] });
    h.registry.addImage(REPO, 'a', a);
    h.registry.addImage(REPO, 'b', b);
    const ia = await h.importer.importImage('registry.test:5000/team/app:a');
    await h.importer.importImage('registry.test:5000/team/app:b');
    await h.images.markDeleted(ia.id);
    const removed = await collectUnreferencedBlobs(h);
    // Its manifest too: it was stored for the registry endpoint and only that image named it.
    assert.deepEqual(removed.sort(), [a.manifestDigest, a.config.descriptor.digest, a.layers[1]!.descriptor.digest].sort());
    assert.equal(await h.blobs.has(a.layers[0]!.descriptor.digest), true);
  });

  it('gives concurrent imports of the same reference one image', async () => {
    h.registry.addImage(REPO, 'v1', await buildImage());
    const [x, y] = await Promise.all([h.importer.importImage(SOURCE), h.importer.importImage(SOURCE)]);
    assert.equal(x.id, y.id);
    assert.equal((await h.images.list({ filters: {}, limit: 10 })).images.length, 1);
  });

  it('kills the image when a blob does not match its digest, and no blob becomes visible', async () => {
    const image = await buildImage();
    h.registry.addImage(REPO, 'v1', image);
    const bad = image.layers[1]!.descriptor.digest;
    h.registry.blobs.set(bad, Buffer.alloc(image.layers[1]!.bytes.length, 7));
    const started = await h.importer.startImport(SOURCE);
    const ended = await started.done;
    assert.equal(ended?.status, 'killed');
    assert.match(ended?.properties[IMPORT_ERROR_PROPERTY] ?? '', /^DIGEST_MISMATCH/);
    assert.equal(await h.blobs.has(bad), false);
    assert.deepEqual(readdirSync(join(h.blobs.root, 'tmp')), []);
    const err = await rejectsWithCode(h.importer.importImage(SOURCE), 'IMAGE_IMPORT_FAILED');
    assert.match(err.message, /DIGEST_MISMATCH/);
  });

  it('refuses a reference by digest whose manifest hashes differently', async () => {
    const image = await buildImage();
    const wrong = `sha256:${'0'.repeat(64)}`;
    h.registry.addManifest(REPO, wrong, image.manifest, image.mediaType);
    await rejectsWithCode(h.importer.importImage(`registry.test:5000/team/app@${wrong}`), 'DIGEST_MISMATCH');
  });

  it('refuses Docker schema 1 manifests with a clear error', async () => {
    h.registry.addManifest(
      REPO,
      'v1',
      Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'team/app', tag: 'v1', fsLayers: [] })),
      'application/vnd.docker.distribution.manifest.v1+prettyjws',
    );
    const err = await rejectsWithCode(h.importer.importImage(SOURCE), 'MANIFEST_UNSUPPORTED');
    assert.match(err.message, /schema 1/);
  });

  it('explains an HTML page where a manifest was expected', async () => {
    h.registry.addManifest(REPO, 'v1', Buffer.from('<!DOCTYPE html><html><body>Sign in</body></html>'), 'text/html; charset=utf-8');
    const err = await rejectsWithCode(h.importer.importImage(SOURCE), 'MANIFEST_INVALID');
    assert.match(err.message, /HTML/);
  });

  it('picks the configured platform from a manifest list', async () => {
    const amd = await buildImage();
    const arm = await buildImage({ platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    h.registry.addImage(REPO, null, amd);
    h.registry.addImage(REPO, null, arm);
    const index = buildIndex([
      { image: arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      { image: amd, platform: { os: 'linux', architecture: 'amd64' } },
    ]);
    h.registry.addManifest(REPO, 'v1', index.bytes, index.mediaType);
    const done = await h.importer.importImage(SOURCE);
    assert.equal(done.properties.docker_digest, amd.manifestDigest);
    assert.equal(done.properties.docker_index_digest, index.digest);
    assert.equal(done.properties.docker_image_id, amd.config.descriptor.digest);
    assert.equal(h.registry.blobFetches.includes(arm.layers[0]!.descriptor.digest), false);
  });

  it('answers PLATFORM_NOT_FOUND listing what an index offers', async () => {
    const arm = await buildImage();
    h.registry.addImage(REPO, null, arm);
    const index = buildIndex([{ image: arm, platform: { os: 'linux', architecture: 'arm64' } }], true);
    h.registry.addManifest(REPO, 'v1', index.bytes, index.mediaType);
    const err = await rejectsWithCode(h.importer.importImage(SOURCE), 'PLATFORM_NOT_FOUND');
    assert.deepEqual(err.details.available, ['linux/arm64']);
  });

  it('accepts OCI manifests with uncompressed layers', async () => {
    const image = await buildImage({ oci: true, compress: false });
    assert.equal(image.layers[0]!.descriptor.mediaType, 'application/vnd.oci.image.layer.v1.tar');
    h.registry.addImage(REPO, 'v1', image);
    assert.equal((await h.importer.importImage(SOURCE)).status, 'active');
  });

  it('kills the image when the config does not list one diff_id per layer', async () => {
    const image = await buildImage();
    const config = Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [] } }));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: image.mediaType,
        config: { ...image.config.descriptor, digest: sha256(config), size: config.length },
        layers: image.layers.map((l) => l.descriptor),
      }),
    );
    h.registry.addImage(REPO, null, image);
    h.registry.blobs.set(sha256(config), config);
    h.registry.addManifest(REPO, 'v1', manifest, image.mediaType);
    await rejectsWithCode(h.importer.importImage(SOURCE), 'IMAGE_IMPORT_FAILED');
  });

  it('fails fast on bad references and unreachable registries', async () => {
    await rejectsWithCode(h.importer.importImage('http://example.com/app'), 'INVALID_REFERENCE');
    await rejectsWithCode(h.importer.importImage('docker://registry.test:5000/Team/App'), 'INVALID_REFERENCE');
    await rejectsWithCode(h.importer.importImage('docker://nowhere.test/app:v1'), 'REGISTRY_UNREACHABLE');
    h.registry.addImage(REPO, 'v1', await buildImage());
    await rejectsWithCode(h.importer.importImage('docker://registry.test:5000/team/app:v2'), 'MANIFEST_NOT_FOUND');
  });

  it('imports into a queued image (web-download) and marks interrupted imports killed', async () => {
    const image = await buildImage();
    h.registry.addImage(REPO, 'v1', image);
    const queued = await h.images.create({ name: 'later', container_format: 'docker', disk_format: 'raw' });
    const started = await h.importer.importInto(queued.id, SOURCE);
    assert.equal(started.image.status, 'importing');
    const done = await started.done;
    assert.equal(done?.status, 'active');
    assert.equal(done?.properties.docker_image_id, image.config.descriptor.digest);
    await rejectsWithCode(h.importer.importInto(queued.id, SOURCE), 'IMAGE_INVALID_STATE');

    const stale = await h.images.create({ name: 'stale', status: 'importing' });
    assert.equal(await h.importer.recoverInterrupted(), 1);
    assert.equal((await h.images.get(stale.id))?.status, 'killed');
  });
});
