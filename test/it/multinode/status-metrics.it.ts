import { strict as assert } from 'node:assert';
import { BerthError } from '../../../common/errors.js';
import { createAgentClient } from '../../../agent/client/http.js';
import { startStatusServer, type StatusServer } from '../../../driver/http/status.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';
import { AmqpPeer } from '../../support/amqp.js';
import { startDriverHarness, type DriverHarness } from '../../support/driver-harness.js';
import { waitUntil } from '../../support/waits.js';
import { buildAndRunInstance, imageDict, instancePrimitive, terminateInstance } from '../../../tools/lib/nova-requests.js';
import { silentLogger } from '../../../common/log.js';

/** The sample lines of a Prometheus text page, keyed by `name{labels}` as written. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

async function get(base: string, path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, text: await res.text() };
}

// The capacity report and the power-state sync run at start-up only, so every count below comes
// from the sequence the test sends.
const QUIET = { compute: { report_interval: 86400, sync_power_state_interval: 0 } };

describe('compute status server: metrics after a known sequence, readiness (real RabbitMQ, fake agent)', function () {
  this.timeout(60_000);
  let agent: FakeAgentClient;
  let h: DriverHarness;
  let status: StatusServer;
  let peer: AmqpPeer;

  before(async () => {
    agent = new FakeAgentClient();
    agent.knownImages.add('img-ok');
    h = await startDriverHarness(agent, QUIET);
    status = (await startStatusServer('127.0.0.1:0', { registry: h.driver.metrics.registry, checks: h.driver.readiness, log: silentLogger() }))!;
    peer = await AmqpPeer.open();
  });
  after(async () => {
    await peer?.close();
    await status?.close();
    await h?.stop();
  });

  const state = async (uuid: string) => (await h.driver.store.get(uuid))?.vm_state;
  const uuidOf = (i: Record<string, unknown>) => (i['nova_object.data'] as { uuid: string }).uuid;

  it('counts 2 builds (1 failing on a missing image), 1 delete and 1 malformed message exactly', async () => {
    const flavor = { vcpus: 1, memory_mb: 64 };
    const good = instancePrimitive({ image_id: 'img-ok', flavor });
    const bad = instancePrimitive({ image_id: 'img-missing', flavor });
    const to = `compute.${h.host}`;
    peer.cast(h.exchange, to, buildAndRunInstance(good, imageDict({ id: 'img-ok' })));
    peer.cast(h.exchange, to, buildAndRunInstance(bad, imageDict({ id: 'img-missing' })));
    await waitUntil(async () => (await state(uuidOf(good))) === 'active', 15_000, 'good build active');
    await waitUntil(async () => (await state(uuidOf(bad))) === 'error', 15_000, 'bad build in error');
    peer.cast(h.exchange, to, terminateInstance(good));
    await waitUntil(async () => (await state(uuidOf(good))) === 'deleted', 15_000, 'instance deleted');
    peer.publishRaw(h.exchange, to, Buffer.from('{"oslo.version": "2.0", "oslo.message": "{not json'));
    await waitUntil(() => h.driver.server.stats.malformed === 1, 10_000, 'malformed message dropped');
    await waitUntil(() => h.driver.server.stats.inFlight === 0, 10_000, 'all work settled');

    const page = await get(status.url, '/metrics');
    assert.equal(page.status, 200);
    const m = samples(page.text);
    const rpc = (method: string, outcome: string) => m.get(`berth_rpc_messages_total{method="${method}",kind="cast",outcome="${outcome}"}`);
    // A failed build is a handled cast: the instance goes to error with a fault, the message is ok.
    assert.equal(rpc('build_and_run_instance', 'ok'), 2);
    assert.equal(rpc('terminate_instance', 'ok'), 1);
    assert.equal(rpc('unknown', 'malformed'), 1);
    // Only these three series for the methods sent; a fanout from another run on the same broker
    // (compute_fanout is shared) may add its own method's series, which is not counted here.
    const sent = [...m.keys()].filter(
      (k) => k.startsWith('berth_rpc_messages_total') && /method="(build_and_run_instance|terminate_instance|unknown)"/.test(k),
    );
    assert.equal(sent.length, 3, page.text);
    assert.equal(m.get('berth_rpc_duration_seconds_count{method="build_and_run_instance"}'), 2);
    assert.equal(m.get('berth_rpc_duration_seconds_count{method="terminate_instance"}'), 1);
    assert.equal(m.get('berth_builds_in_flight'), 0);
    assert.equal(m.get('berth_instance_failures_total{code="ImageNotFound"}'), 1);
    assert.equal([...m.keys()].filter((k) => k.startsWith('berth_instance_failures_total')).length, 1);
    assert.equal(m.get('berth_instances{vm_state="error"}'), 1);
    assert.equal([...m.keys()].filter((k) => k.startsWith('berth_instances{')).length, 1, 'the deleted instance is not counted');
    // Start-up capacity report, create.start + create.end, create.start + create.error, delete.start + delete.end.
    assert.equal(m.get('berth_notifications_sent_total'), 7);
  });

  it('counts builds in flight while they run', async () => {
    agent.createDelayMs = 1500;
    try {
      const inst = instancePrimitive({ image_id: 'img-ok', flavor: { vcpus: 1, memory_mb: 64 } });
      peer.cast(h.exchange, `compute.${h.host}`, buildAndRunInstance(inst, imageDict({ id: 'img-ok' })));
      await waitUntil(async () => samples((await get(status.url, '/metrics')).text).get('berth_builds_in_flight') === 1, 10_000, 'one build in flight');
      await waitUntil(async () => (await state(uuidOf(inst))) === 'active', 15_000, 'build active');
      await waitUntil(async () => samples((await get(status.url, '/metrics')).text).get('berth_builds_in_flight') === 0, 10_000, 'no build in flight');
    } finally {
      agent.createDelayMs = 0;
    }
  });

  it('answers /healthz, and /readyz 200 with broker, database and agent up', async () => {
    assert.equal((await get(status.url, '/healthz')).status, 200);
    const ready = await get(status.url, '/readyz');
    assert.equal(ready.status, 200, ready.text);
    assert.deepEqual(JSON.parse(ready.text), { status: 'ready', checks: { broker: { ok: true }, database: { ok: true }, agent: { ok: true } } });
  });

  it('/readyz is 503 naming the agent when the agent does not answer', async () => {
    // The fake's health always answers; this one call behaves as an unreachable agent's.
    agent.health = () =>
      Promise.reject(new BerthError('SERVICE_UNREACHABLE', 'berth-agent unreachable: connect ECONNREFUSED', { status: 503, retryable: true }));
    let res: { status: number; text: string };
    try {
      res = await get(status.url, '/readyz');
    } finally {
      delete (agent as Partial<FakeAgentClient>).health;
    }
    assert.equal(res.status, 503);
    const body = JSON.parse(res.text) as { error: { code: string; message: string; details: { down: string[] } } };
    assert.equal(body.error.code, 'NOT_READY');
    assert.deepEqual(body.error.details.down, ['agent']);
    assert.match(body.error.message, /agent/);
    assert.equal((await get(status.url, '/readyz')).status, 200, 'ready again once the agent answers');
  });

  it('/readyz is 503 with a real agent client pointed at a closed port', async () => {
    const dead = createAgentClient({ url: 'http://127.0.0.1:9', token: 't', retries: 0, timeoutMs: 2000 });
    const checks = h.driver.readiness.map((c) => (c.name === 'agent' ? { name: 'agent', probe: async () => (await dead.health()).ok } : c));
    const other = (await startStatusServer('127.0.0.1:0', { registry: h.driver.metrics.registry, checks, log: silentLogger() }))!;
    try {
      const res = await get(other.url, '/readyz');
      assert.equal(res.status, 503);
      assert.deepEqual((JSON.parse(res.text) as { error: { details: { down: string[] } } }).error.details.down, ['agent']);
    } finally {
      await other.close();
    }
  });
});
