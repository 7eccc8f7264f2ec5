import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { extract } from 'tar-stream';
import { Readable } from 'node:stream';
import { BerthError } from '../../../common/errors.js';
import { createImageClient } from '../../../glance-bridge/client/http.js';
import type { ImageService } from '../../../glance-bridge/client/types.js';
import { buildImage } from '../../fakes/image-builder.js';
import { inProcessAgent, inProcessFetch, serveInProcess, type InProcessServer } from '../../support/in-process.js';
import { appOver, call } from './api-server.js';
import { createHarness, REPO, SOURCE, type Harness } from './harness.js';

async function untar(bytes: Buffer): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const ex = extract();
  const done = (async () => {
    for await (const entry of ex) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      out.set(entry.header.name, Buffer.concat(chunks));
    }
  })();
  Readable.from([bytes]).pipe(ex as unknown as NodeJS.WritableStream);
  await done;
  return out;
}

describe('glance-bridge API', () => {
  let h: Harness;
  let server: InProcessServer;
  let base: string;
  let client: ImageService;

  beforeEach(async () => {
    h = await createHarness();
    const app = appOver(h);
    server = serveInProcess(app.callback());
    base = server.base;
    client = createImageClient({ url: base, pollIntervalMs: 20, agent: inProcessAgent });
  });
  afterEach(async () => {
    await server.close();
    await h.close();
  });

  it('imports through the client and serves a docker-load archive matching size and checksum', async () => {
    const image = await buildImage();
    h.registry.addImage(REPO, 'v1', image);
    const progress: string[] = [];
    const glance = await client.importImage(SOURCE, { name: 'app', onProgress: (p) => progress.push(p.status) });
    assert.equal(glance.status, 'active');
    assert.equal(glance.docker_image_id, image.config.descriptor.digest);
    assert.equal(progress.at(-1), 'active');

    const file = await call(base, 'GET', `/v2/images/${glance.id}/file`);
    assert.equal(file.status, 200);
    assert.equal(file.headers.get('content-type'), 'application/octet-stream');
    assert.equal(Number(file.headers.get('content-length')), glance.size);
    assert.equal(file.headers.get('content-md5'), glance.checksum);
    assert.equal(createHash('md5').update(file.bytes).digest('hex'), glance.checksum);
    assert.equal(createHash('sha512').update(file.bytes).digest('hex'), glance.os_hash_value);

    const head = await inProcessFetch(`${base}/v2/images/${glance.id}/file`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(Number(head.headers.get('content-length')), glance.size);

    const entries = await untar(file.bytes);
    const manifest = JSON.parse(entries.get('manifest.json')!.toString('utf8'));
    const hex = (d: string) => d.slice(7);
    assert.deepEqual(manifest, [
      { Config: `${hex(image.config.descriptor.digest)}.json`, RepoTags: [], Layers: image.layers.map((l) => `${hex(l.descriptor.digest)}/layer.tar`) },
    ]);
    assert.deepEqual(entries.get(`${hex(image.config.descriptor.digest)}.json`), image.config.bytes);
    assert.deepEqual(entries.get(`${hex(image.layers[1]!.descriptor.digest)}/layer.tar`), image.layers[1]!.bytes);

    const streamed = await client.downloadImage(glance.id);
    let n = 0;
    for await (const c of streamed as AsyncIterable<Buffer>) n += c.length;
    assert.equal(n, glance.size);
  });

  it('lists with filters and paginates with limit, marker and next', async () => {
    for (const name of ['a', 'b', 'c']) await call(base, 'POST', '/v2/images', { name, container_format: 'bare', disk_format: 'raw' });
    const page1 = await call(base, 'GET', '/v2/images?limit=2');
    assert.equal(page1.status, 200);
    assert.equal(page1.json.schema, '/v2/schemas/images');
    assert.equal(page1.json.first, '/v2/images');
    assert.equal(page1.json.images.length, 2);
    const page2 = await call(base, 'GET', page1.json.next);
    assert.equal(page2.json.images.length, 1);
    assert.equal(page2.json.next, undefined);
    const names = [...page1.json.images, ...page2.json.images].map((i: any) => i.name).sort();
    assert.deepEqual(names, ['a', 'b', 'c']);
    const named = await call(base, 'GET', '/v2/images?name=b&status=queued');
    assert.deepEqual(
      named.json.images.map((i: any) => i.name),
      ['b'],
    );
    assert.equal((await client.listImages({ container_format: 'bare' })).length, 3);
    assert.equal((await call(base, 'GET', '/v2/images?sort_key=bogus')).status, 400);
    assert.equal((await call(base, 'GET', `/v2/images?marker=${'0'.repeat(8)}-0000-0000-0000-000000000000`)).status, 400);
  });

  it('creates queued images, validates input, and deletes', async () => {
    const created = await call(base, 'POST', '/v2/images', {
      name: 'x',
      container_format: 'docker',
      disk_format: 'raw',
      tags: ['t'],
      min_ram: 64,
      os_distro: 'busybox',
    });
    assert.equal(created.status, 201);
    assert.equal(created.json.status, 'queued');
    assert.equal(created.json.owner, 'berth');
    assert.equal(created.json.os_distro, 'busybox');
    assert.equal(created.headers.get('location'), `/v2/images/${created.json.id}`);
    for (const bad of [
      { status: 'active' },
      { container_format: 'tarball' },
      { min_ram: -1 },
      { tags: 'x' },
      { custom: 5 },
      { docker_image_id: 'sha256:x' },
      { id: 'nope' },
    ]) {
      const res = await call(base, 'POST', '/v2/images', bad);
      assert.equal(res.status, 400, JSON.stringify(bad));
      assert.equal(res.json.error.code, 'INVALID_INPUT');
    }
    assert.equal((await call(base, 'POST', '/v2/images', '{not json')).status, 400);
    assert.equal((await call(base, 'POST', '/v2/images', { id: created.json.id })).status, 409);

    const file = await call(base, 'GET', `/v2/images/${created.json.id}/file`);
    assert.equal(file.status, 204);
    assert.equal((await call(base, 'DELETE', `/v2/images/${created.json.id}`)).status, 204);
    const gone = await call(base, 'GET', `/v2/images/${created.json.id}`);
    assert.equal(gone.status, 404);
    assert.equal(gone.json.error.code, 'IMAGE_NOT_FOUND');
    assert.equal((await call(base, 'GET', '/v2/images/not-a-uuid')).status, 404);
    assert.equal(await client.getImage(created.json.id), null);
    await client.deleteImage(created.json.id);
  });

  it('runs a web-download import into a queued image', async () => {
    const image = await buildImage();
    h.registry.addImage(REPO, 'v1', image);
    const created = await call(base, 'POST', '/v2/images', { name: 'wd', container_format: 'docker', disk_format: 'raw' });
    const id = created.json.id as string;
    assert.equal((await call(base, 'POST', `/v2/images/${id}/import`, { method: { name: 'glance-direct' } })).status, 400);
    assert.equal((await call(base, 'POST', `/v2/images/${id}/import`, { method: { name: 'web-download', uri: 'ftp://x/y' } })).status, 400);
    const started = await call(base, 'POST', `/v2/images/${id}/import`, { method: { name: 'web-download', uri: SOURCE } });
    assert.equal(started.status, 202);
    await h.importer.drain();
    const done = await client.getImage(id);
    assert.equal(done?.status, 'active');
    assert.equal(done?.docker_digest, image.manifestDigest);
    assert.equal((await call(base, 'POST', `/v2/images/${id}/import`, { method: { name: 'web-download', uri: SOURCE } })).status, 409);
  });

  it('reports import failures as 4xx with stable codes, and killed images through the client', async () => {
    const missing = await call(base, 'POST', '/v2/berth/import', { source: 'docker://registry.test:5000/team/app:nope' });
    assert.equal(missing.status, 503);
    assert.equal(missing.json.error.code, 'REGISTRY_UNREACHABLE');
    h.registry.addImage(REPO, 'v1', await buildImage());
    const notFound = await call(base, 'POST', '/v2/berth/import', { source: 'docker://registry.test:5000/team/app:nope' });
    assert.equal(notFound.status, 404);
    assert.equal(notFound.json.error.code, 'MANIFEST_NOT_FOUND');
    assert.equal((await call(base, 'POST', '/v2/berth/import', { source: 'Not A Ref' })).json.error.code, 'INVALID_REFERENCE');
    assert.equal((await call(base, 'POST', '/v2/berth/import', {})).status, 400);

    const broken = await buildImage();
    h.registry.addImage(REPO, 'broken', broken);
    h.registry.blobs.set(broken.layers[0]!.descriptor.digest, Buffer.from('garbage'));
    await assert.rejects(
      client.importImage('docker://registry.test:5000/team/app:broken'),
      (err: unknown) => err instanceof BerthError && err.code === 'IMAGE_IMPORT_FAILED' && /BLOB_SIZE_MISMATCH/.test(err.message),
    );
    await assert.rejects(
      client.downloadImage((await client.listImages({ status: 'killed' }))[0]!.id),
      (err: unknown) => err instanceof BerthError && err.code === 'IMAGE_NO_DATA',
    );
  });
});
