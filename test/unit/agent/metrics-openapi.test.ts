import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Router } from '@koa/router';
import { createApp } from '../../../agent/app.js';
import { Counter, Histogram, MetricsRegistry } from '../../../common/metrics.js';
import { silentLogger } from '../../../common/log.js';
import { FakeContainerRuntime } from '../../fakes/container-runtime.js';
import { FakeImageService } from '../../fakes/glance-images.js';
import { FakeVolumeDevices } from '../../fakes/volume-devices.js';
import { TOKEN, startHarness, type AgentHarness } from './harness.js';

describe('agent /metrics', () => {
  let h: AgentHarness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  const scrape = async (): Promise<string> => {
    const res = await h.raw('GET', '/metrics');
    assert.equal(res.status, 200);
    return res.body as string;
  };

  it('needs the token, while /healthz stays open', async () => {
    assert.equal((await h.raw('GET', '/metrics', { token: null })).status, 401);
    assert.equal((await h.raw('GET', '/metrics', { token: 'wrong' })).status, 401);
    assert.equal((await h.raw('GET', '/healthz', { token: null })).status, 200);
  });

  it('/readyz answers without a token: ready while the runtime answers, 503 NOT_READY naming it when not', async () => {
    const ok = await h.raw('GET', '/readyz', { token: null });
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.body, { status: 'ready', checks: { runtime: { ok: true } } });
    h.runtime.unavailable = true;
    const down = await h.raw('GET', '/readyz', { token: null });
    h.runtime.unavailable = false;
    assert.equal(down.status, 503);
    const body = down.body as { error: { code: string; details: { down: string[] } } };
    assert.equal(body.error.code, 'NOT_READY');
    assert.deepEqual(body.error.details.down, ['runtime']);
  });

  it('serves the process metrics (memory, CPU, open files, event-loop lag, GC) beside its own', async () => {
    const text = await scrape();
    for (const name of [
      'process_resident_memory_bytes',
      'process_cpu_seconds_total',
      'process_open_fds',
      'nodejs_eventloop_lag_seconds',
      'nodejs_gc_duration_seconds',
      'berth_agent_requests_total',
    ]) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
    }
  });

  it('counts requests by route template, times them, and counts instances and image fetches', async () => {
    const a = randomUUID();
    await h.client.createInstance(a, h.spec());
    await h.client.createInstance(randomUUID(), h.spec());
    await h.client.getInstance(a);
    await h.client.getInstance(randomUUID());
    await h.client.instanceAction(a, { action: 'pause' });
    const text = await scrape();
    assert.match(text, /^berth_agent_requests_total\{method="PUT",route="\/v1\/instances\/:uuid",status="201"\} 2$/m);
    assert.match(text, /^berth_agent_requests_total\{method="GET",route="\/v1\/instances\/:uuid",status="200"\} 1$/m);
    assert.match(text, /^berth_agent_requests_total\{method="GET",route="\/v1\/instances\/:uuid",status="404"\} 1$/m);
    assert.match(text, /^berth_agent_request_duration_seconds_bucket\{le="\+Inf",method="PUT",route="\/v1\/instances\/:uuid"\} 2$/m);
    assert.match(text, /^berth_agent_request_duration_seconds_count\{method="PUT",route="\/v1\/instances\/:uuid"\} 2$/m);
    assert.match(text, /^berth_agent_instances\{power_state="running"\} 1$/m);
    assert.match(text, /^berth_agent_instances\{power_state="paused"\} 1$/m);
    assert.match(text, /^berth_agent_instances\{power_state="stopped"\} 0$/m);
    assert.match(text, /^berth_agent_image_fetches_total\{result="loaded"\} 1$/m);
    assert.match(text, /^berth_agent_image_cache_hits_total 1$/m);
    assert.match(text, /^berth_agent_runtime_up 1$/m);
  });

  it('keeps answering while the runtime is down, without an instance count', async () => {
    await h.raw('GET', `/v1/no-such-route/${'x'.repeat(50)}`);
    h.runtime.unavailable = true;
    const text = await scrape();
    assert.match(text, /^berth_agent_runtime_up 0$/m);
    assert.doesNotMatch(text, /^berth_agent_instances\{/m);
    assert.match(text, /route="unmatched",status="404"/);
    assert.doesNotMatch(text, /no-such-route/);
  });
});

describe('Prometheus registry', () => {
  it('escapes label values and writes histogram buckets cumulatively', async () => {
    const r = new MetricsRegistry();
    r.register(new Counter('c_total', 'help')).inc({ v: 'a"b\\c\nd' }, 2);
    const hist = r.register(new Histogram('h', 'help', [1, 2]));
    hist.observe({}, 0.5);
    hist.observe({}, 1.5);
    const text = await r.render();
    assert.match(text, /^c_total\{v="a\\"b\\\\c\\nd"\} 2$/m);
    assert.match(text, /^h_bucket\{le="1"\} 1$/m);
    assert.match(text, /^h_bucket\{le="2"\} 2$/m);
    assert.match(text, /^h_bucket\{le="\+Inf"\} 2$/m);
    assert.match(text, /^h_sum 2$/m);
  });
});

describe('agent OpenAPI document', () => {
  const file = JSON.parse(readFileSync(new URL('../../../docs/agent-openapi.json', import.meta.url), 'utf8')) as {
    openapi: string;
    paths: Record<string, Record<string, unknown>>;
  };

  /** Every (method, path) the app's routers answer, paths in OpenAPI's {param} form. */
  function routesOf(): Set<string> {
    const volumesPath = join(mkdtempSync(join(tmpdir(), 'berth-openapi-')), 'volumes');
    const app = createApp({
      runtime: new FakeContainerRuntime(),
      images: new FakeImageService(),
      token: TOKEN,
      log: silentLogger(),
      maxBodyBytes: 4096,
      stopTimeout: 1,
      statePath: '/nonexistent',
      injectSshKeys: false,
      subnetPool: '10.99.0.0/22',
      subnetPrefix: 24,
      volumes: { devices: new FakeVolumeDevices('/nonexistent/volumes'), path: volumesPath, maxSizeGb: 1, maxTotalGb: 0 },
    });
    const routes = new Set<string>();
    for (const mw of app.middleware as Array<{ router?: Router }>) {
      for (const layer of mw.router?.stack ?? []) {
        for (const method of layer.methods) {
          if (method === 'HEAD') continue;
          routes.add(`${method.toLowerCase()} ${String(layer.path).replace(/:(\w+)/g, '{$1}')}`);
        }
      }
    }
    return routes;
  }

  it('is OpenAPI 3.0 and documents every route the app serves, and no others', () => {
    assert.match(file.openapi, /^3\.0\.\d+$/);
    const served = routesOf();
    assert.ok(served.size >= 10, `found only ${served.size} routes`);
    const documented = new Set(
      Object.entries(file.paths).flatMap(([path, item]) =>
        Object.keys(item)
          .filter((k) => k !== 'parameters')
          .map((m) => `${m} ${path}`),
      ),
    );
    for (const r of served) assert.ok(documented.has(r), `route ${r} is missing from docs/agent-openapi.json`);
    for (const d of documented) assert.ok(served.has(d), `docs/agent-openapi.json documents ${d}, which the app does not serve`);
  });

  it('is served at GET /v1/openapi.json to token holders', async () => {
    const h = await startHarness();
    try {
      assert.equal((await h.raw('GET', '/v1/openapi.json', { token: null })).status, 401);
      const res = await h.raw('GET', '/v1/openapi.json');
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, file);
    } finally {
      await h.close();
    }
  });
});
