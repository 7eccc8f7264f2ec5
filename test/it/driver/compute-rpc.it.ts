import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { BerthError } from '../../../common/errors.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';
import { AmqpPeer, eventType, type Collector } from '../../support/amqp.js';
import { startDriverHarness, type DriverHarness } from '../../support/driver-harness.js';
import { fixture } from '../../support/fixtures.js';
import { waitUntil } from '../../support/waits.js';
import { buildAndRunInstance, imageDict, instancePrimitive, instanceRequest, rebuildInstance, terminateInstance } from '../../../tools/lib/nova-requests.js';

describe('compute driver on a real RabbitMQ (fake agent)', function () {
  this.timeout(60_000);
  let agent: FakeAgentClient;
  let h: DriverHarness;
  let peer: AmqpPeer;
  let events: Collector;
  const flavor = { vcpus: 1, memory_mb: 64 };

  before(async () => {
    agent = new FakeAgentClient();
    h = await startDriverHarness(agent);
    peer = await AmqpPeer.open();
    events = await peer.listen(h.exchange, ['versioned_notifications.info', 'versioned_notifications.error']);
  });
  after(async () => {
    await peer?.close();
    await h?.stop();
  });

  const toHost = () => `compute.${h.host}`;
  const state = async (uuid: string) => (await h.driver.store.get(uuid))?.vm_state;

  it('declares the queues nova expects and consumes them', () => {
    assert.deepEqual(h.driver.server.queues.slice(0, 2), ['compute', `compute.${h.host}`]);
    assert.match(h.driver.server.queues[2]!, /^compute_fanout_[0-9a-f]{32}$/);
  });

  it('builds an instance from the captured build_and_run_instance cast', async () => {
    const f = fixture('oslo/compute-build_and_run_instance-cast.json');
    const uuid = '6a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d';
    peer.publishRaw(h.exchange, toHost(), Buffer.from(f.body));
    await waitUntil(async () => (await state(uuid)) === 'active', 15_000, 'instance active');
    const spec = agent.instances.get(uuid)!.spec;
    assert.equal(spec.flavor.memory_mb, 2048);
    assert.equal(spec.fixed_ip, '10.0.0.5');
    assert.equal(spec.image_id, 'c1a4f6e2-3b5d-4c7e-9f10-2a3b4c5d6e7f');
    const end = await events.waitFor(eventType('instance.create.end'), 10_000, 'instance.create.end');
    const payload = end.message.payload as Record<string, Record<string, unknown>>;
    assert.equal(payload['nova_object.name'], 'InstanceCreatePayload');
    assert.equal(payload['nova_object.data']!.uuid, uuid);
    assert.equal(payload['nova_object.data']!.state, 'active');
    assert.equal(payload['nova_object.data']!.power_state, 'running');
    assert.equal(end.message.publisher_id, `nova-compute:${h.host}`);
    assert.equal(end.message._context_auth_token, null, 'notifications carry a sanitized context');
    await events.waitFor(eventType('instance.create.start'), 1000, 'instance.create.start');
  });

  it('runs a duplicated cast (same _unique_id) once', async () => {
    const inst = instancePrimitive({ image_id: 'img-1', flavor });
    const uuid = (inst['nova_object.data'] as { uuid: string }).uuid;
    const msg = { ...buildAndRunInstance(inst, imageDict({ id: 'img-1' })), _unique_id: randomUUID().replace(/-/g, '') };
    const before = agent.calls.filter((c) => c === 'createInstance').length;
    peer.cast(h.exchange, toHost(), msg);
    peer.cast(h.exchange, toHost(), msg);
    await waitUntil(async () => (await state(uuid)) === 'active', 10_000, 'instance active');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(agent.calls.filter((c) => c === 'createInstance').length - before, 1);
    // A second build of the same instance with a new message id is also a no-op.
    peer.cast(h.exchange, toHost(), buildAndRunInstance(inst, imageDict({ id: 'img-1' })));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(agent.calls.filter((c) => c === 'createInstance').length - before, 1);
  });

  it('terminates an instance and succeeds again when it is already gone', async () => {
    const inst = instancePrimitive({ image_id: 'img-1', flavor });
    const uuid = (inst['nova_object.data'] as { uuid: string }).uuid;
    peer.cast(h.exchange, toHost(), buildAndRunInstance(inst, imageDict({ id: 'img-1' })));
    await waitUntil(async () => (await state(uuid)) === 'active', 10_000, 'instance active');
    peer.cast(h.exchange, toHost(), terminateInstance(inst));
    await waitUntil(async () => (await state(uuid)) === 'deleted', 10_000, 'instance deleted');
    assert.ok(!agent.instances.has(uuid));
    await events.waitFor(
      (c) =>
        c.message.event_type === 'instance.delete.end' && (c.message.payload as { 'nova_object.data': { uuid: string } })['nova_object.data'].uuid === uuid,
      5000,
      'delete.end',
    );
    peer.cast(h.exchange, toHost(), terminateInstance(inst));
    const { reply } = await peer.call(h.exchange, toHost(), { method: 'ping', namespace: 'baseapi', version: '1.0', args: { arg: 'after' } });
    assert.deepEqual(reply.result, { service: 'compute', arg: 'after' });
    const actions = await h.driver.store.actions(uuid);
    assert.deepEqual(
      actions.map((a) => [a.action, a.result]),
      [
        ['create', 'Success'],
        ['delete', 'Success'],
      ],
    );
  });

  it('answers calls in oslo format: result, NoSuchMethod, UnsupportedVersion, TypeError, nova exceptions', async () => {
    const ping = await peer.call(h.exchange, 'compute', { method: 'ping', namespace: 'baseapi', version: '1.0', args: { arg: 'hi' } });
    assert.deepEqual(ping.reply.result, { service: 'compute', arg: 'hi' });
    assert.equal(ping.reply.failure, null);
    assert.equal(ping.reply.ending, true);
    const failure = async (msg: Record<string, unknown>) =>
      JSON.parse((await peer.call(h.exchange, toHost(), msg)).reply.failure as string) as Record<string, unknown>;
    assert.equal((await failure({ method: 'no_such_method', version: '6.0', args: {} })).class, 'NoSuchMethod');
    assert.equal((await failure({ method: 'get_console_output', version: '7.0', args: {} })).class, 'UnsupportedVersion');
    assert.equal((await failure({ method: 'get_console_output', version: '6.0', args: {} })).class, 'TypeError');
    const missing = await failure(instanceRequest('get_console_output', instancePrimitive({ image_id: 'x', flavor }), { tail_length: 5 }));
    assert.equal(missing.class, 'InstanceNotFound');
    assert.equal(missing.module, 'nova.exception');
    assert.equal((missing.kwargs as { code: number }).code, 404);
    const unsupported = await failure(instanceRequest('get_vnc_console', instancePrimitive({ image_id: 'x', flavor }), { console_type: 'novnc' }));
    assert.equal(unsupported.class, 'NotImplementedError');
    assert.equal(unsupported.module, 'builtins');
  });

  it('rebuilds, reports diagnostics, host uptime, and refuses set_admin_password as nova does', async () => {
    const inst = instancePrimitive({ image_id: 'img-1', flavor });
    const uuid = (inst['nova_object.data'] as { uuid: string }).uuid;
    peer.cast(h.exchange, toHost(), buildAndRunInstance(inst, imageDict({ id: 'img-1' })));
    await waitUntil(async () => (await state(uuid)) === 'active', 10_000, 'instance active');
    peer.cast(h.exchange, toHost(), rebuildInstance(inst, 'img-1', 'img-2'));
    await waitUntil(async () => (await h.driver.store.get(uuid))?.image_ref === 'img-2' && (await state(uuid)) === 'active', 10_000, 'rebuilt');
    assert.equal(agent.instances.get(uuid)?.spec.image_id, 'img-2');
    const diag = (await peer.call(h.exchange, toHost(), instanceRequest('get_instance_diagnostics', inst))).reply.result as Record<
      string,
      Record<string, unknown>
    >;
    assert.equal(diag['nova_object.name'], 'Diagnostics');
    assert.equal(diag['nova_object.data']!.state, 'running');
    assert.equal(diag['nova_object.data']!.num_cpus, 1);
    const uptime = (await peer.call(h.exchange, toHost(), { method: 'get_host_uptime', version: '6.0', args: {} })).reply.result as string;
    assert.match(uptime, /up .* load average: [\d.]+, [\d.]+, [\d.]+$/);
    const pw = JSON.parse((await peer.call(h.exchange, toHost(), instanceRequest('set_admin_password', inst, { new_pass: 'x' }))).reply.failure as string) as {
      class: string;
    };
    assert.equal(pw.class, 'SetAdminPasswdNotSupported');
  });

  it('sends call-monitor heartbeats during a long call', async () => {
    agent.createDelayMs = 0;
    const inst = instancePrimitive({ image_id: 'img-1', flavor });
    peer.cast(h.exchange, toHost(), buildAndRunInstance(inst, imageDict({ id: 'img-1' })));
    const uuid = (inst['nova_object.data'] as { uuid: string }).uuid;
    await waitUntil(async () => (await state(uuid)) === 'active', 10_000, 'instance active');
    const slow = agent.consoleLog.bind(agent);
    agent.consoleLog = async (u, t) => {
      await new Promise((r) => setTimeout(r, 2500));
      return slow(u, t);
    };
    try {
      const { reply, heartbeats } = await peer.call(h.exchange, toHost(), { ...instanceRequest('get_console_output', inst, { tail_length: 1 }), _timeout: 2 });
      assert.equal(reply.result, 'line 3');
      assert.ok(heartbeats >= 1, `expected heartbeats, got ${heartbeats}`);
    } finally {
      agent.consoleLog = slow;
    }
  });

  it('fails a build whose image is missing to error with a fault', async () => {
    agent.failNext('createInstance', new BerthError('IMAGE_NOT_FOUND', 'image nope not found in the image store', { status: 404 }));
    const inst = instancePrimitive({ image_id: 'nope', flavor });
    const uuid = (inst['nova_object.data'] as { uuid: string }).uuid;
    peer.cast(h.exchange, toHost(), buildAndRunInstance(inst, imageDict({ id: 'nope' })));
    await waitUntil(async () => (await state(uuid)) === 'error', 10_000, 'instance error');
    const fault = await h.driver.store.latestFault(uuid);
    assert.equal(fault?.details, 'ImageNotFound');
    assert.match(fault!.message, /nope/);
    const err = await events.waitFor(
      (c) => c.message.event_type === 'instance.create.error' && JSON.stringify(c.message.payload).includes(uuid),
      5000,
      'create.error',
    );
    assert.equal(err.message.priority, 'ERROR');
    assert.equal(err.routingKey, 'versioned_notifications.error');
  });

  it('survives an unreachable agent: the build fails with a fault, the service stays up', async () => {
    agent.failNext(
      'createInstance',
      new BerthError('SERVICE_UNREACHABLE', 'agent unreachable at http://127.0.0.1:1: ECONNREFUSED', { status: 503, retryable: true }),
    );
    const inst = instancePrimitive({ image_id: 'img-1', flavor });
    const uuid = (inst['nova_object.data'] as { uuid: string }).uuid;
    peer.cast(h.exchange, toHost(), buildAndRunInstance(inst, imageDict({ id: 'img-1' })));
    await waitUntil(async () => (await state(uuid)) === 'error', 10_000, 'instance error');
    assert.match((await h.driver.store.latestFault(uuid))!.message, /unreachable/);
    const { reply } = await peer.call(h.exchange, toHost(), { method: 'ping', namespace: 'baseapi', version: '1.0', args: { arg: 1 } });
    assert.equal(reply.failure, null);
  });

  it('drops malformed messages without requeueing and answers a malformed call', async () => {
    const before = h.driver.server.stats.malformed;
    peer.publishRaw(h.exchange, toHost(), Buffer.from('{not json'));
    peer.publishRaw(h.exchange, toHost(), Buffer.from('{"method": "ping"}'), null);
    peer.publishRaw(h.exchange, toHost(), Buffer.from('{"oslo.version": "2.0", "oslo.message": "[]"}'));
    peer.publishRaw(h.exchange, toHost(), Buffer.from('"just a string"'));
    await waitUntil(() => h.driver.server.stats.malformed - before >= 4, 5000, 'malformed messages counted');
    const { reply } = await peer.call(h.exchange, toHost(), { method: 42, args: {} });
    const f = JSON.parse(reply.failure as string) as { class: string; message: string };
    assert.equal(f.class, 'InvalidInput');
    assert.match(f.message, /method/);
    const q = await peer.ch.checkQueue(`compute.${h.host}`);
    assert.equal(q.messageCount, 0, 'nothing left requeued');
  });

  it('rejects an instance it cannot decode with InvalidInput naming the field', async () => {
    const inst = instancePrimitive({ image_id: 'img-1', flavor });
    (inst['nova_object.data'] as Record<string, unknown>).flavor = {
      'nova_object.name': 'Flavor',
      'nova_object.version': '1.2',
      'nova_object.data': { vcpus: 'two', memory_mb: 64 },
    };
    const msg = buildAndRunInstance(inst, imageDict({ id: 'img-1' }));
    const r2 = await peer.call(h.exchange, toHost(), msg);
    const f = JSON.parse(r2.reply.failure as string) as { class: string; message: string };
    assert.equal(f.class, 'InvalidInput');
    assert.match(f.message, /instance\.flavor\.vcpus/);
  });
});
