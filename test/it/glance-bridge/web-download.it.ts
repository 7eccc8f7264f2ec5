import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DownloadSlots } from '../../../glance-bridge/api/web-download.js';
import { DestinationGuard } from '../../../glance-bridge/registry/destination.js';
import { serveOnLoopback } from '../../support/loopback.js';
import { call, startApiServer } from '../../unit/glance-bridge/api-server.js';
import { createHarness, type Harness } from '../../unit/glance-bridge/harness.js';

/** web-download of http(s):// URLs into non-docker images, through the registry imports' destination checks. */
describe('glance-bridge web-download of http(s) URLs', () => {
  let h: Harness;
  let api: { base: string; close(): Promise<void> } | undefined;
  let origin: { base: string; close(): Promise<void> };
  const data = randomBytes(4096);
  const seen: { url: string; authorization: string | undefined }[] = [];
  let finishSlow: () => void = () => undefined;

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
    if (req.url === '/disk.raw') {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': data.length });
      res.end(data);
      return;
    }
    if (req.url === '/slow') {
      res.writeHead(200, { 'content-length': 8 });
      res.write('1234');
      finishSlow = () => res.end('5678');
      return;
    }
    if (req.url === '/to-internal') {
      res.writeHead(302, { location: (req.headers['x-next'] as string) ?? 'http://127.0.0.2:9/x' });
      res.end();
      return;
    }
    res.writeHead(404);
    res.end('nope');
  };

  const start = async (allowed: string[], maxImageBytes?: number, web = true, slots?: DownloadSlots) => {
    h = await createHarness(maxImageBytes ? { maxImageBytes } : {});
    api = await startApiServer(
      h,
      web ? { web: { guard: new DestinationGuard(allowed), timeoutMs: 5000, insecureHosts: [], ...(slots ? { slots } : {}) } } : {},
    );
  };
  beforeEach(async () => {
    seen.length = 0;
    origin = await serveOnLoopback(handler);
  });
  afterEach(async () => {
    await api?.close();
    api = undefined;
    await h.close();
    await origin.close();
  });

  const queued = async (body: Record<string, unknown> = {}) =>
    (await call(api!.base, 'POST', '/v2/images', { name: 'web', container_format: 'bare', disk_format: 'raw', ...body })).json as { id: string };
  const importUri = (id: string, uri: string) => call(api!.base, 'POST', `/v2/images/${id}/import`, { method: { name: 'web-download', uri } });
  const settled = async (id: string) => {
    for (let i = 0; i < 200; i++) {
      const image = (await call(api!.base, 'GET', `/v2/images/${id}`)).json;
      if (image.status === 'active' || image.status === 'killed') return image;
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error(`image ${id} did not settle`);
  };

  it('downloads an allowed http URL into a queued bare image: 202, then active with size and checksum', async () => {
    await start(['127.0.0.1']);
    const { id } = await queued();
    const res = await importUri(id, `${origin.base}/disk.raw`);
    assert.equal(res.status, 202);
    const image = await settled(id);
    assert.equal(image.status, 'active');
    assert.equal(image.size, data.length);
    assert.equal(image.checksum, createHash('md5').update(data).digest('hex'));
    assert.deepEqual((await call(api!.base, 'GET', `/v2/images/${id}/file`)).bytes, data);
    assert.equal(seen[0]?.authorization, undefined, 'no credentials are sent');
  });

  it('refuses an internal address unless allowed_internal lists it: 400 before anything is fetched, by address or by name', async () => {
    await start([]);
    const { id } = await queued();
    const port = new URL(origin.base).port;
    for (const uri of [`${origin.base}/disk.raw`, `http://localhost:${port}/disk.raw`, `http://[::ffff:127.0.0.1]:${port}/disk.raw`]) {
      const res = await importUri(id, uri);
      assert.equal(res.status, 400, uri);
      assert.match(res.json.error.message, /^URI for web-download does not pass filtering/);
    }
    assert.equal((await call(api!.base, 'GET', `/v2/images/${id}`)).json.status, 'queued');
    assert.equal(seen.length, 0);
  });

  it('checks every redirect hop: a redirect to an internal address that is not allowed kills the image', async () => {
    await start(['127.0.0.1']);
    const { id } = await queued();
    assert.equal((await importUri(id, `${origin.base}/to-internal`)).status, 202);
    const image = await settled(id);
    assert.equal(image.status, 'killed');
    assert.match(image.berth_import_error, /^REGISTRY_DESTINATION_REFUSED/);
  });

  it('kills the image on a non-200 answer, and over max_image_bytes', async () => {
    await start(['127.0.0.1'], 1024);
    const missing = await queued();
    assert.equal((await importUri(missing.id, `${origin.base}/missing`)).status, 202);
    const gone = await settled(missing.id);
    assert.equal(gone.status, 'killed');
    assert.match(gone.berth_import_error, /HTTP 404/);
    assert.doesNotMatch(gone.berth_import_error, /nope/, 'the remote body is not repeated');
    const big = await queued();
    assert.equal((await importUri(big.id, `${origin.base}/disk.raw`)).status, 202);
    const over = await settled(big.id);
    assert.equal(over.status, 'killed');
    assert.match(over.berth_upload_error ?? over.berth_import_error, /BLOB_TOO_LARGE/);
  });

  it('refuses credentials in the URL, other schemes, docker images and non-queued images (400/409) before any fetch', async () => {
    await start(['127.0.0.1']);
    const { id } = await queued();
    for (const uri of [`http://user:pw@127.0.0.1:${new URL(origin.base).port}/disk.raw`, 'ftp://127.0.0.1/disk.raw', 'file:///etc/passwd']) {
      const res = await importUri(id, uri);
      assert.equal(res.status, 400, uri);
    }
    const docker = await queued({ container_format: 'docker' });
    assert.equal((await importUri(docker.id, `${origin.base}/disk.raw`)).status, 400);
    assert.equal((await importUri(id, `${origin.base}/disk.raw`)).status, 202);
    await settled(id);
    assert.equal((await importUri(id, `${origin.base}/disk.raw`)).status, 409);
    assert.equal(seen.length, 1);
  });

  it('runs at most max_concurrent_imports_per_project downloads of a project at once (413 past it, free again once one ends)', async () => {
    await start(['127.0.0.1'], undefined, true, new DownloadSlots(0, 1));
    const first = await queued();
    const second = await queued();
    assert.equal((await importUri(first.id, `${origin.base}/slow`)).status, 202);
    const refused = await importUri(second.id, `${origin.base}/disk.raw`);
    assert.equal(refused.status, 413);
    assert.equal(refused.json.error.code, 'QUOTA_EXCEEDED');
    for (let i = 0; i < 100 && !seen.some((r) => r.url === '/slow'); i++) await new Promise((r) => setTimeout(r, 10));
    finishSlow();
    assert.equal((await settled(first.id)).status, 'active');
    assert.equal((await importUri(second.id, `${origin.base}/disk.raw`)).status, 202);
    assert.equal((await settled(second.id)).status, 'active');
  });

  it('takes docker:// references only when the service has no fetcher configured', async () => {
    await start([], undefined, false);
    const { id } = await queued();
    assert.equal((await importUri(id, `${origin.base}/disk.raw`)).status, 400);
  });
});
