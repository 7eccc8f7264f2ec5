import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { silentLogger } from '../../../common/log.js';
import { MANIFEST_DIGEST_PROPERTY } from '../../../glance-bridge/client/types.js';
import { createRegistryApp, type RegistryEndpointStats } from '../../../glance-bridge/registry-endpoint/registry-app.js';
import { buildImage, sha256 } from '../../fakes/image-builder.js';
import { call } from './api-server.js';
import { serveInProcess, type InProcessServer } from '../../support/in-process.js';
import { createHarness, REPO, SOURCE, type Harness } from './harness.js';

describe('glance-bridge read-only registry endpoint', () => {
  let h: Harness;
  let server: InProcessServer;
  let base: string;
  let stats: RegistryEndpointStats;

  beforeEach(async () => {
    h = await createHarness();
    const created = createRegistryApp({ images: h.images, blobs: h.blobs, log: silentLogger() });
    stats = created.stats;
    server = serveInProcess(created.app.callback());
    base = server.base;
  });
  afterEach(async () => {
    await server.close();
    await h.close();
  });

  async function imported(opts: Parameters<typeof buildImage>[0] = {}) {
    const built = await buildImage(opts);
    h.registry.addImage(REPO, 'v1', built);
    return { built, image: await h.importer.importImage(SOURCE) };
  }

  it('answers the /v2/ ping with the API version header', async () => {
    const res = await call(base, 'GET', '/v2/');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
  });

  it('serves the manifest bytes as received under berth/<id>, the source name and the digest', async () => {
    const { built, image } = await imported();
    assert.equal(image.properties[MANIFEST_DIGEST_PROPERTY], built.manifestDigest);
    for (const path of [`/v2/berth/${image.id}/manifests/latest`, '/v2/team/app/manifests/v1', `/v2/team/app/manifests/${built.manifestDigest}`]) {
      const res = await call(base, 'GET', path);
      assert.equal(res.status, 200, path);
      assert.deepEqual(res.bytes, built.manifest);
      assert.equal(res.headers.get('content-type'), built.mediaType);
      assert.equal(res.headers.get('docker-content-digest'), built.manifestDigest);
    }
    const head = await call(base, 'HEAD', '/v2/team/app/manifests/v1');
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(built.manifest.length));
    assert.equal(head.bytes.length, 0);
    assert.equal(stats.manifestsServed, 3);
  });

  it('answers unknown names, tags and digests in the registry error shape', async () => {
    const { image } = await imported();
    const cases: [string, number, string][] = [
      ['/v2/team/other/manifests/v1', 404, 'NAME_UNKNOWN'],
      [`/v2/berth/${'0'.repeat(8)}-0000-0000-0000-000000000000/manifests/latest`, 404, 'NAME_UNKNOWN'],
      ['/v2/team/app/manifests/v2', 404, 'MANIFEST_UNKNOWN'],
      [`/v2/berth/${image.id}/manifests/v1`, 404, 'MANIFEST_UNKNOWN'],
      [`/v2/team/app/manifests/sha256:${'a'.repeat(64)}`, 404, 'MANIFEST_UNKNOWN'],
      [`/v2/team/app/blobs/sha256:${'a'.repeat(64)}`, 404, 'BLOB_UNKNOWN'],
      ['/v2/team/app/blobs/%E0%A4%A', 404, 'BLOB_UNKNOWN'],
      ['/v2/_catalog', 404, 'UNSUPPORTED'],
    ];
    for (const [path, status, code] of cases) {
      const res = await call(base, 'GET', path);
      assert.equal(res.status, status, path);
      assert.equal(res.json.errors[0].code, code, path);
      assert.equal(typeof res.json.errors[0].message, 'string');
    }
  });

  it('refuses writes with 405 UNSUPPORTED', async () => {
    const { built } = await imported();
    for (const [method, path] of [
      ['PUT', '/v2/team/app/manifests/v1'],
      ['DELETE', `/v2/team/app/blobs/${built.config.descriptor.digest}`],
      ['POST', '/v2/team/app/blobs/uploads/'],
      ['POST', '/v2/'],
    ]) {
      const res = await call(base, method!, path!);
      assert.equal(res.status, path === '/v2/team/app/blobs/uploads/' ? 404 : 405, `${method} ${path}`);
      assert.equal(res.json.errors[0].code, 'UNSUPPORTED');
    }
  });

  it('serves blobs of the repository, whole or by Range, and counts them', async () => {
    const { built, image } = await imported();
    const layer = built.layers[1]!;
    const whole = await call(base, 'GET', `/v2/berth/${image.id}/blobs/${layer.descriptor.digest}`);
    assert.equal(whole.status, 200);
    assert.deepEqual(whole.bytes, layer.bytes);
    assert.equal(whole.headers.get('docker-content-digest'), layer.descriptor.digest);
    const part = await call(base, 'GET', `/v2/team/app/blobs/${layer.descriptor.digest}`, undefined, { range: 'bytes=10-19' });
    assert.equal(part.status, 206);
    assert.deepEqual(part.bytes, layer.bytes.subarray(10, 20));
    assert.equal(part.headers.get('content-range'), `bytes 10-19/${layer.bytes.length}`);
    const outside = await call(base, 'GET', `/v2/team/app/blobs/${layer.descriptor.digest}`, undefined, { range: `bytes=${layer.bytes.length}-` });
    assert.equal(outside.status, 416);
    const head = await call(base, 'HEAD', `/v2/team/app/blobs/${built.config.descriptor.digest}`);
    assert.equal(head.headers.get('content-length'), String(built.config.bytes.length));
    assert.deepEqual(stats, { manifestsServed: 0, blobsServed: 2, blobBytesServed: layer.bytes.length + 10 });
  });

  it('does not serve a blob under a repository whose images do not use it', async () => {
    const { built } = await imported();
    const other = await buildImage();
    h.registry.addImage({ ...REPO, repository: 'team/other' }, 'v1', other);
    const second = await h.importer.importImage('docker://registry.test:5000/team/other:v1');
    const res = await call(base, 'GET', `/v2/berth/${second.id}/blobs/${built.layers[0]!.descriptor.digest}`);
    assert.equal(res.json.errors[0].code, 'BLOB_UNKNOWN');
  });

  it('serves a rewritten manifest naming the stored tar when a zstd layer was converted', async () => {
    const { built, image } = await imported({ oci: true, compression: ['gzip', 'zstd'], layers: [{ a: 'gzip layer' }, { 'b.bin': randomBytes(4096) }] });
    const res = await call(base, 'GET', `/v2/berth/${image.id}/manifests/latest`);
    const served = res.json as { layers: { mediaType: string; digest: string; size: number }[]; config: { digest: string } };
    const digest = sha256(res.bytes);
    assert.notEqual(digest, built.manifestDigest);
    assert.equal(res.headers.get('docker-content-digest'), digest);
    assert.equal(image.properties[MANIFEST_DIGEST_PROPERTY], digest);
    assert.equal(image.properties.docker_digest, built.manifestDigest);
    const diffIds = (JSON.parse(built.config.bytes.toString('utf8')) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids;
    assert.deepEqual(served.layers[0], built.layers[0]!.descriptor);
    assert.equal(served.layers[1]!.digest, diffIds[1]);
    assert.equal(served.layers[1]!.mediaType, 'application/vnd.oci.image.layer.v1.tar');
    for (const d of [served.config, ...served.layers]) {
      const blob = await call(base, 'GET', `/v2/berth/${image.id}/blobs/${d.digest}`);
      assert.equal(blob.status, 200);
      assert.equal(sha256(blob.bytes), d.digest);
    }
    assert.equal((await call(base, 'GET', `/v2/berth/${image.id}/manifests/${built.manifestDigest}`)).status, 404);
  });

  it('serves nothing for images that are not active', async () => {
    const { image } = await imported();
    await h.images.transition(image.id, 'deactivated');
    assert.equal((await call(base, 'GET', `/v2/berth/${image.id}/manifests/latest`)).json.errors[0].code, 'NAME_UNKNOWN');
    assert.equal((await call(base, 'GET', '/v2/team/app/manifests/v1')).json.errors[0].code, 'NAME_UNKNOWN');
  });
});
