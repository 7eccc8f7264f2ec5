import { strict as assert } from 'node:assert';
import { FakeAgentClient } from '../../fakes/agent-client.js';
import { AmqpPeer } from '../../support/amqp.js';
import { startDriverHarness, type DriverHarness } from '../../support/driver-harness.js';
import { runOsloClient, startOsloClient } from '../../support/python.js';
import { waitUntil } from '../../support/waits.js';
import { newUniqueId } from '../../../driver/rpc/envelope.js';
import { buildAndRunInstance, imageDict, instancePrimitive, instanceRequest, terminateInstance } from '../../../tools/lib/nova-requests.js';

/**
 * Wire compatibility with the unmodified stock Python client: Debian's python3-oslo.messaging
 * 14.0.3 (run with /usr/bin/python3 through test/support/oslo_client.py) drives a real Berth
 * driver on the broker with the calls, casts and fanouts nova makes, and a stock notification
 * listener consumes the driver's notifications (oslo-wire-contract.md §5, §6, §9, §11).
 */

interface OsloError {
  type: string;
  module: string;
  str: string;
  exc_type: string | null;
  value?: string;
}
interface RpcResult {
  result?: unknown;
  sent?: boolean;
  error?: OsloError;
  elapsed: number;
  heartbeats?: number;
}
interface Notification {
  priority: string;
  ctxt: Record<string, unknown>;
  publisher_id: string;
  event_type: string;
  payload: Record<string, unknown>;
  metadata: Record<string, unknown>;
}

/** A nova-requests message (method, args, version, `_context_*`) as stock client arguments. */
function asJob(msg: Record<string, unknown>): Record<string, unknown> {
  const ctxt: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(msg)) if (k.startsWith('_context_')) ctxt[k.slice('_context_'.length)] = v;
  return { method: msg.method, args: msg.args, version: msg.version, ctxt };
}

const uuidOf = (inst: Record<string, unknown>) => (inst['nova_object.data'] as { uuid: string }).uuid;

describe('stock oslo.messaging 14.0.3 client against a Berth compute node', function () {
  this.timeout(60_000);
  let agent: FakeAgentClient;
  let h: DriverHarness;
  const flavor = { vcpus: 1, memory_mb: 64 };
  const pools: string[] = [];

  before(async () => {
    agent = new FakeAgentClient();
    h = await startDriverHarness(agent);
  });
  after(async () => {
    if (pools.length) {
      const peer = await AmqpPeer.open();
      for (const q of pools) await peer.ch.deleteQueue(q).catch(() => undefined);
      await peer.close();
    }
    await h?.stop();
  });

  /** The transport, exchange and server every stock job uses. */
  const base = () => ({ url: h.config.DEFAULT.transport_url, exchange: h.exchange, server: h.host, allowed_remote_exmods: ['nova.exception'] });
  const stock = (job: Record<string, unknown>, limitMs = 20_000) => runOsloClient<RpcResult>({ ...base(), ...job }, limitMs);
  const stockBatch = (jobs: Record<string, unknown>[], limitMs = 30_000) =>
    runOsloClient<{ results: RpcResult[] }>({ ...base(), jobs }, limitMs).then((r) => r.results);
  const state = async (uuid: string) => (await h.driver.store.get(uuid))?.vm_state;

  /** Builds an instance with a stock cast and waits until it is active. */
  async function buildActive(): Promise<Record<string, unknown>> {
    const inst = instancePrimitive({ image_id: 'img-oslo', flavor });
    const sent = await stock({ mode: 'cast', ...asJob(buildAndRunInstance(inst, imageDict({ id: 'img-oslo' }))) });
    assert.deepEqual(sent.error, undefined);
    await waitUntil(async () => (await state(uuidOf(inst))) === 'active', 10_000, 'instance active');
    return inst;
  }

  it('call: ping (namespace baseapi, 1.0) to the server and to the topic returns the BaseAPI answer', async () => {
    const arg = { nested: ['x', 1, null, true], ünï: 'cöde' };
    const [toServer, toTopic] = await stockBatch([
      { mode: 'call', method: 'ping', namespace: 'baseapi', version: '1.0', args: { arg }, timeout: 10 },
      { mode: 'call', method: 'ping', namespace: 'baseapi', version: '1.0', args: { arg: 'topic' }, timeout: 10, server: null },
    ]);
    assert.deepEqual(toServer!.error, undefined);
    assert.deepEqual(toServer!.result, { service: 'compute', arg });
    assert.deepEqual(toTopic!.result, { service: 'compute', arg: 'topic' });
  });

  it('cast: build_and_run_instance makes the instance active, terminate_instance deletes it', async () => {
    const inst = instancePrimitive({ image_id: 'img-oslo', flavor: { vcpus: 2, memory_mb: 128 } });
    const uuid = uuidOf(inst);
    const built = await stock({ mode: 'cast', ...asJob(buildAndRunInstance(inst, imageDict({ id: 'img-oslo' }))) });
    assert.deepEqual(built, { sent: true, elapsed: built.elapsed });
    await waitUntil(async () => (await state(uuid)) === 'active', 10_000, 'instance active');
    const spec = agent.instances.get(uuid)?.spec;
    assert.ok(spec, 'FakeAgentClient has the instance');
    assert.equal(spec.image_id, 'img-oslo');
    assert.deepEqual([spec.flavor.vcpus, spec.flavor.memory_mb], [2, 128]);
    assert.equal(spec.project_id, 'berth');

    const gone = await stock({ mode: 'cast', ...asJob(terminateInstance(inst)) });
    assert.equal(gone.sent, true);
    await waitUntil(async () => (await state(uuid)) === 'deleted', 10_000, 'instance deleted');
    assert.ok(!agent.instances.has(uuid), 'FakeAgentClient no longer has it');
    // The action is finished just after the row is marked deleted.
    await waitUntil(async () => (await h.driver.store.actions(uuid)).every((a) => a.result !== null), 10_000, 'delete action finished');
    const actions = await h.driver.store.actions(uuid);
    assert.deepEqual(
      actions.map((a) => [a.action, a.result]),
      [
        ['create', 'Success'],
        ['delete', 'Success'],
      ],
    );
  });

  it('fanout cast (exchange compute_fanout) reaches the node', async () => {
    // A read-only method on purpose: a fanout reaches every compute node on this broker, and
    // the other nodes merely fail to find the instance (nothing is replied to a cast).
    const inst = await buildActive();
    const consoleCalls = () => agent.calls.filter((c) => c === 'consoleLog').length;
    const before = { received: h.driver.server.stats.received, console: consoleCalls() };
    const sent = await stock({ mode: 'fanout', ...asJob(instanceRequest('get_console_output', inst, { tail_length: 1 })), server: null });
    assert.equal(sent.sent, true);
    await waitUntil(() => consoleCalls() > before.console, 5000, 'console log read via the fanout');
    assert.ok(h.driver.server.stats.received > before.received);
  });

  it('failures: NoSuchMethod, UnsupportedVersion, TypeError, NotImplementedError and nova.exception as the stock client raises them', async () => {
    const unknown = instancePrimitive({ image_id: 'x', flavor });
    const [noMethod, v7, typeErr, notImpl, notFound] = await stockBatch([
      { mode: 'call', method: 'no_such_method', version: '6.0', args: {}, timeout: 10 },
      { mode: 'call', method: 'get_console_output', version: '7.0', args: {}, timeout: 10 },
      { mode: 'call', method: 'get_console_output', version: '6.0', args: {}, timeout: 10 },
      { mode: 'call', ...asJob(instanceRequest('get_vnc_console', unknown, { console_type: 'novnc' })), timeout: 10 },
      { mode: 'call', ...asJob(instanceRequest('get_console_output', unknown, { tail_length: 5 })), timeout: 10 },
    ]);

    // oslo_messaging.rpc.dispatcher is not an allowed module: RemoteError carrying the class name.
    assert.equal(noMethod!.error?.type, 'RemoteError');
    assert.equal(noMethod!.error?.module, 'oslo_messaging.rpc.client');
    assert.equal(noMethod!.error?.exc_type, 'NoSuchMethod');
    assert.equal(noMethod!.error?.value, 'Endpoint does not support RPC method no_such_method');
    assert.ok(noMethod!.error?.str.startsWith('Remote error: NoSuchMethod Endpoint does not support RPC method no_such_method'), noMethod!.error?.str);

    assert.equal(v7!.error?.type, 'RemoteError');
    assert.equal(v7!.error?.exc_type, 'UnsupportedVersion');
    assert.equal(v7!.error?.value, 'Endpoint does not support RPC version 7.0. Attempted method: get_console_output');

    // builtins is always allowed: the stock client re-raises the builtin class itself.
    assert.equal(typeErr!.error?.type, 'TypeError');
    assert.equal(typeErr!.error?.module, 'builtins');
    assert.match(typeErr!.error!.str, /get_console_output\(\) missing 2 required positional arguments: 'instance' and 'tail_length'/);
    assert.equal(notImpl!.error?.type, 'NotImplementedError');
    assert.equal(notImpl!.error?.module, 'builtins');
    assert.match(notImpl!.error!.str, /get_vnc_console is not supported/);

    // nova.exception is allowed, and Debian's python3-nova provides it: the caller rebuilds
    // nova's own class, re-typed as InstanceNotFound_Remote (contract §6.2).
    assert.equal(notFound!.error?.type, 'InstanceNotFound_Remote');
    assert.equal(notFound!.error?.module, 'nova.exception_Remote');
    assert.match(notFound!.error!.str, new RegExp(`Instance ${uuidOf(unknown)} could not be found`));
  });

  it('call monitor: heartbeats keep a 5 s call alive past call_monitor_timeout=2; the overall timeout still applies', async () => {
    const inst = await buildActive();
    const slow = agent.consoleLog.bind(agent);
    agent.consoleLog = async (u, t) => {
      await new Promise((r) => setTimeout(r, 5000));
      return slow(u, t);
    };
    try {
      const call = { mode: 'call', ...asJob(instanceRequest('get_console_output', inst, { tail_length: 1 })), call_monitor_timeout: 2 };
      // Two stock callers at once: one with room for the 5 s method, one whose overall timeout is 4 s.
      const [ok, capped] = await Promise.all([stock({ ...call, timeout: 10 }), stock({ ...call, timeout: 4 })]);
      assert.deepEqual(ok.error, undefined, `stock call failed: ${JSON.stringify(ok)}`);
      assert.equal(ok.result, 'line 3');
      assert.ok(ok.elapsed >= 4.5, `took ${ok.elapsed} s`);
      // Without heartbeats the caller gives up after 2 s; every 1 s one arrives.
      assert.ok(ok.heartbeats! >= 3, `heartbeats received: ${ok.heartbeats}`);
      // oslo's call monitor only replaces the *per-reply* wait: `timeout` bounds the whole call,
      // so a 4 s call to a 5 s method times out at 4 s (not at 2 s: heartbeats kept it alive).
      assert.equal(capped.error?.type, 'MessagingTimeout', JSON.stringify(capped));
      assert.ok(capped.elapsed >= 3.5 && capped.elapsed < 6, `timed out after ${capped.elapsed} s`);
      assert.ok(capped.heartbeats! >= 2, `heartbeats received: ${capped.heartbeats}`);
    } finally {
      agent.consoleLog = slow;
    }
  });

  it('a stock notification listener receives instance.create.end from nova-compute:<host>', async () => {
    const pool = `berth-it-oslo-${newUniqueId().slice(0, 8)}`;
    pools.push(pool);
    const listener = startOsloClient<{ notifications: Notification[]; matched: boolean }>(
      {
        mode: 'listen',
        url: h.config.DEFAULT.transport_url,
        exchange: h.exchange,
        topic: 'versioned_notifications',
        pool,
        duration: 15,
        until_event: 'instance.create.end',
        until_publisher: `nova-compute:${h.host}`,
      },
      25_000,
    );
    try {
      await listener.ready;
      const inst = await buildActive();
      const uuid = uuidOf(inst);
      const { notifications, matched } = await listener.result;
      assert.ok(matched, `saw only ${notifications.map((n) => n.event_type).join(', ')}`);
      const ours = notifications.filter((n) => (n.payload['nova_object.data'] as { uuid?: string } | undefined)?.uuid === uuid);
      assert.deepEqual(
        ours.map((n) => n.event_type),
        ['instance.create.start', 'instance.create.end'],
      );
      const end = ours[1]!;
      assert.equal(end.publisher_id, `nova-compute:${h.host}`);
      assert.equal(end.priority, 'info');
      assert.equal(end.payload['nova_object.name'], 'InstanceCreatePayload');
      assert.equal(end.payload['nova_object.namespace'], 'nova');
      assert.equal((end.payload['nova_object.data'] as { state: string }).state, 'active');
      assert.match(String(end.metadata.message_id), /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      assert.match(String(end.metadata.timestamp), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$/);
      assert.equal(end.ctxt.auth_token, null, 'the context is sanitized');
      assert.equal(end.ctxt.user_id, 'berth');
    } finally {
      listener.kill();
    }
  });
});
