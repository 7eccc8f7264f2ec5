import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createApp, createImageServiceMetrics, measureImports, type ImageServiceMetrics } from '../../../glance-bridge/app.js';
import { createImageClient } from '../../../glance-bridge/client/http.js';
import type { ReadinessCheck } from '../../../common/status.js';
import { buildImage } from '../../fakes/image-builder.js';
import { inProcessAgent, inProcessFetch as fetch, serveInProcess, type InProcessServer } from '../../support/in-process.js';
import { createHarness, REPO, SOURCE, type Harness } from './harness.js';

function sample(text: string, key: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${key} `));
  return line ? Number(line.slice(key.length + 1)) : undefined;
}

describe('glance-bridge /metrics, /healthz, /readyz and request ids', () => {
  let h: Harness;
  let server: InProcessServer;
  let app: ReturnType<typeof createApp>;
  let base: string;
  let metrics: ImageServiceMetrics;
  let logged: Record<string, unknown>[];
  let blobDown: boolean;

  beforeEach(async () => {
    h = await createHarness();
    metrics = createImageServiceMetrics();
    measureImports(h.importer, metrics);
    logged = [];
    blobDown = false;
    const sink = new Writable({
      write(chunk: Buffer, _e, done) {
        logged.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
        done();
      },
    });
    const readiness: ReadinessCheck[] = [
      {
        name: 'database',
        probe: async () => {
          await h.db.query('SELECT 1');
        },
      },
      {
        name: 'blob_store',
        probe: async () => {
          if (blobDown) throw new Error('EROFS: read-only file system');
        },
      },
    ];
    app = createApp({
      images: h.images,
      blobs: h.blobs,
      importer: h.importer,
      uploader: h.uploader,
      log: pino({ level: 'debug' }, sink),
      maxBodyBytes: 65536,
      defaultProject: 'berth',
      metrics,
      readiness,
    });
    server = serveInProcess(app.callback());
    base = server.base;
  });
  afterEach(async () => {
    await server.close();
    await h.close();
  });

  const scrape = async () => (await fetch(`${base}/metrics`)).text();

  it('counts an import, a cache hit, a rejected import, a download with its bytes and an upload', async () => {
    h.registry.addImage(REPO, 'v1', await buildImage());
    const client = createImageClient({ url: base, agent: inProcessAgent });
    const image = await client.importImage(SOURCE, { name: 'app' });
    await client.importImage(SOURCE, { name: 'again' });
    await assert.rejects(client.importImage('docker://registry.test:5000/team/absent:v1'));
    const file = await fetch(`${base}/v2/images/${image.id}/file`);
    const bytes = Buffer.from(await file.arrayBuffer());
    const queued = (await (
      await fetch(`${base}/v2/images`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'up', container_format: 'bare', disk_format: 'raw' }),
      })
    ).json()) as { id: string };
    const put = await fetch(`${base}/v2/images/${queued.id}/file`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream' },
      body: new Uint8Array(Buffer.from('hello')),
    });
    assert.equal(put.status, 204);

    const text = await scrape();
    assert.equal(sample(text, 'berth_image_imports_total{outcome="active"}'), 1);
    assert.equal(sample(text, 'berth_image_imports_total{outcome="existing"}'), 1);
    assert.equal(sample(text, 'berth_image_imports_total{outcome="rejected"}'), 1);
    assert.equal(sample(text, 'berth_image_import_cache_hits_total'), 1);
    assert.equal(sample(text, 'berth_image_import_bytes_total'), image.size);
    assert.equal(sample(text, 'berth_image_import_duration_seconds_count{outcome="active"}'), 1);
    assert.equal(sample(text, 'berth_image_downloads_total{status="200"}'), 1);
    assert.equal(sample(text, 'berth_image_download_bytes_total'), bytes.length);
    assert.equal(bytes.length, image.size);
    assert.equal(sample(text, 'berth_image_uploads_total{status="204"}'), 1);
  });

  it('answers /healthz, and /readyz 503 naming the blob store when it is not writable', async () => {
    assert.equal((await fetch(`${base}/healthz`)).status, 200);
    assert.equal((await fetch(`${base}/readyz`)).status, 200);
    blobDown = true;
    const res = await fetch(`${base}/readyz`);
    assert.equal(res.status, 503);
    const body = (await res.json()) as { error: { code: string; details: { down: string[]; checks: Record<string, { reason?: string }> } } };
    assert.equal(body.error.code, 'NOT_READY');
    assert.deepEqual(body.error.details.down, ['blob_store']);
    assert.match(body.error.details.checks.blob_store!.reason!, /read-only/);
  });

  it("logs the caller's X-Openstack-Request-Id", async () => {
    const id = 'req-0b9c6a3e-59e8-4f5f-9d0c-2a1f3b4c5d6e';
    await fetch(`${base}/v2/images`, { headers: { 'x-openstack-request-id': id } });
    assert.ok(
      logged.some((l) => l.request_id === id && l.path === '/v2/images'),
      JSON.stringify(logged),
    );
  });
});
