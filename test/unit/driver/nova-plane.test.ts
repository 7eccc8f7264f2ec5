import { strict as assert } from 'node:assert';
import { silentLogger } from '../../../common/log.js';
import { openDriverDatabase } from '../../../driver/db/index.js';
import { ComputeManager } from '../../../driver/compute/manager.js';
import { InstanceStore } from '../../../driver/compute/store.js';
import { hostResources } from '../../../driver/compute/resources.js';
import { computeEndpoint } from '../../../driver/compute/endpoint.js';
import { Dispatcher, type Endpoint } from '../../../driver/rpc/dispatcher.js';
import { parseRequest } from '../../../driver/rpc/envelope.js';
import { Notifier } from '../../../driver/notify/notifier.js';
import type { NovaControlPlane } from '../../../driver/nova/plane.js';
import { newObject, type Primitive } from '../../../driver/nova/objects.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';
import { fixture as sharedFixture } from '../../support/fixtures.js';
import { FakeConductor } from '../../fakes/nova-conductor.js';
import { FakePlacement } from '../../fakes/placement.js';
import { FakePublisher } from '../../fakes/publisher.js';
import { agentError } from '../../../agent/client/errors.js';
import { flavorPrimitive, migrationPrimitive, prepResize, resizeDecision } from '../../../tools/lib/nova-requests.js';
import { TEST_RABBIT as rabbit, testNovaPlane } from '../../support/driver-fixtures.js';

/** nova-cp fixtures show the body decoded (nova-control-plane.md §8). */
const fixture = (name: string) =>
  sharedFixture(`nova-cp/${name}`) as unknown as {
    request: { body: { 'oslo.message': Record<string, unknown> & { args: Record<string, unknown> } } };
  };
const resources = hostResources(
  {
    vcpus: 8,
    memory_mb: 16384,
    disk_gb: 100,
    reserved_host_cpus: 0,
    reserved_host_memory_mb: 512,
    reserved_host_disk_mb: 0,
    cpu_allocation_ratio: 16,
    ram_allocation_ratio: 1.5,
    disk_allocation_ratio: 1,
  },
  '/',
);

/** Runs a method as the dispatcher does: the endpoint's deserialize step, then the handler. */
const invoke = (ep: Endpoint, method: string, ctx: Record<string, unknown>, args: Record<string, unknown>) => {
  const spec = ep.methods[method]!;
  return spec.handler(ctx, ep.deserialize ? ep.deserialize(args, spec) : args);
};

describe('nova control plane (fake conductor and placement)', () => {
  let conductor: FakeConductor;
  let placement: FakePlacement;
  let store: InstanceStore;
  let agent: FakeAgentClient;
  let plane: NovaControlPlane;
  let manager: ComputeManager;
  const newPlane = () => testNovaPlane({ conductor, placement, resources });

  /** The captured build cast (fixture 08), its instance already in nova's database as the conductor left it. */
  const seedBuild = () => {
    const msg = fixture('08-conductor-to-compute-cast-build_and_run_instance.json').request.body['oslo.message'];
    const instance = msg.args.instance as Primitive;
    conductor.addInstance(instance);
    return { msg, instance, uuid: String(instance['nova_object.data'].uuid) };
  };

  /** Starts the plane and builds the seeded instance through the compute endpoint. */
  const startAndBuild = async (ctx: Record<string, unknown> = {}) => {
    await plane.start();
    const seeded = seedBuild();
    const ep = computeEndpoint(manager, agent);
    await invoke(ep, 'build_and_run_instance', ctx, seeded.msg.args);
    return { ...seeded, ep };
  };

  beforeEach(async () => {
    conductor = new FakeConductor();
    placement = new FakePlacement();
    agent = new FakeAgentClient();
    store = new InstanceStore(await openDriverDatabase('sqlite://'));
    plane = newPlane();
    const notifier = new Notifier(new FakePublisher(), {
      exchange: 'nova',
      host: 'berth1',
      format: 'versioned',
      driver: 'messagingv2',
      versionedTopic: 'versioned_notifications',
      legacyTopic: 'notifications',
      rabbit,
      log: silentLogger(),
    });
    manager = new ComputeManager({ host: 'berth1', node: 'berth1', store, agent, notifier, resources, plane, log: silentLogger() });
  });
  afterEach(async () => {
    await plane.stop();
    await store.close();
  });

  it("registers in nova's order: Service, then ComputeNode, then the Placement provider", async () => {
    await plane.start();
    assert.deepEqual(conductor.calls, ['Service.get_by_host_and_binary', 'Service.create', 'ComputeNode.get_by_host_and_nodename', 'ComputeNode.create']);
    const svc = conductor.services[0]!;
    assert.deepEqual([svc.host, svc.binary, svc.topic, svc.version, svc.report_count], ['berth1', 'nova-compute', 'compute', 64, 0]);
    const cn = conductor.nodes[0]!;
    assert.equal(cn.hypervisor_type, 'docker');
    assert.deepEqual([cn.vcpus, cn.memory_mb, cn.local_gb, cn.memory_mb_used, cn.free_ram_mb], [8, 16384, 100, 512, 16384 - 512]);
    const rp = placement.providers.get(String(cn.uuid))!;
    assert.equal(rp.name, 'berth1');
    assert.deepEqual(rp.inventories.VCPU, { total: 8, reserved: 0, min_unit: 1, max_unit: 8, step_size: 1, allocation_ratio: 16 });
    assert.deepEqual(rp.inventories.MEMORY_MB!.reserved, 512);
    assert.ok(rp.traits.includes('COMPUTE_NODE'));
    assert.ok(!rp.traits.includes('COMPUTE_STATUS_DISABLED'));
  });

  it("a restart keeps the traits an operator set on its provider (nova's _get_traits), with its own and the disabled state", async () => {
    await plane.start();
    const rp = plane.providerUuid!;
    await placement.setTraits(rp, [...placement.providers.get(rp)!.traits, 'CUSTOM_OPERATOR_PICK', 'COMPUTE_STATUS_DISABLED']);
    await plane.stop();
    const again = newPlane();
    await again.start();
    await again.stop();
    const traits = placement.providers.get(rp)!.traits;
    assert.ok(traits.includes('CUSTOM_OPERATOR_PICK'), String(traits));
    assert.ok(traits.includes('COMPUTE_NODE'));
    assert.ok(!traits.includes('COMPUTE_STATUS_DISABLED'), 'the service is enabled');
  });

  it('hand-built Service.create matches what nova accepted (fixture 13)', () => {
    const sent = fixture('13-raw-Service.create.json').request.body['oslo.message'].args.objinst as Primitive;
    assert.deepEqual(newObject('Service', { host: 'rawhost2', binary: 'nova-compute', topic: 'compute', report_count: 0, version: 64 }), sent);
  });

  it('after a restart it finds its rows again and keeps its provider uuid', async () => {
    await plane.start();
    const uuid = plane.providerUuid;
    await plane.stop();
    conductor.calls.length = 0;
    const again = newPlane();
    await again.start();
    await again.stop();
    assert.deepEqual(conductor.calls, ['Service.get_by_host_and_binary', 'ComputeNode.get_by_host_and_nodename', 'ComputeNode.save']);
    assert.equal(again.providerUuid, uuid);
    assert.equal(conductor.services.length, 1);
    assert.equal(placement.providers.size, 1);
  });

  it('heartbeats raise report_count and move last_seen_up; a vanished service registers again', async () => {
    await plane.start();
    await plane.heartbeat();
    await plane.heartbeat();
    assert.equal(conductor.services[0]!.report_count, 2);
    assert.ok(conductor.services[0]!.last_seen_up);
    conductor.services.length = 0;
    await plane.heartbeat();
    assert.equal(conductor.services.length, 1, 'registered again');
  });

  it("builds the captured conductor cast with nova's four guarded saves (fixtures 08, 09)", async () => {
    const { uuid } = await startAndBuild({ request_id: 'req-1' });
    const saves = conductor.saves.filter((s) => s.uuid === uuid);
    assert.deepEqual(
      saves.map((s) => s.kwargs),
      [{ expected_task_state: ['scheduling', null] }, {}, { expected_task_state: [null] }, { expected_task_state: 'spawning' }],
    );
    assert.deepEqual(saves[1]!.changes, { host: 'berth1', launched_on: 'berth1', node: 'berth1' });
    const row = conductor.instances.get(uuid)!;
    assert.deepEqual([row.vm_state, row.task_state, row.power_state], ['active', null, 1]);
    assert.match(String(row.launched_at), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal((await agent.getInstance(uuid))?.power_state, 'running');
  });

  it('a server deleted while it was being scheduled is not built', async () => {
    await plane.start();
    const { msg, uuid } = seedBuild();
    conductor.instances.get(uuid)!.task_state = 'deleting';
    await invoke(computeEndpoint(manager, agent), 'build_and_run_instance', { request_id: 'req-1' }, msg.args);
    assert.equal(agent.calls.filter((c) => c === 'createInstance').length, 0);
    const row = await store.get(uuid);
    assert.deepEqual([row?.vm_state, row?.task_state, row?.deleted, row?.terminated_at ?? null], ['deleted', null, true, null]);
    assert.equal(await store.latestFault(uuid), null, 'abandoned, not failed: no fault');
  });

  it("stop, then delete: saved under the API's task state; delete releases allocations and destroys the record", async () => {
    const { ep, instance, uuid } = await startAndBuild();
    conductor.instances.get(uuid)!.task_state = 'powering-off';
    await invoke(ep, 'stop_instance', {}, { instance });
    assert.deepEqual(conductor.saves.at(-1)!.kwargs, { expected_task_state: 'powering-off' });
    assert.deepEqual([conductor.instances.get(uuid)!.vm_state, conductor.instances.get(uuid)!.power_state], ['stopped', 4]);
    placement.allocations.set(uuid, { VCPU: 1 });
    conductor.instances.get(uuid)!.task_state = 'deleting';
    await invoke(ep, 'terminate_instance', {}, { instance, bdms: null });
    const row = conductor.instances.get(uuid)!;
    assert.equal(row.vm_state, 'deleted');
    assert.equal(row.deleted, true);
    assert.ok(!placement.allocations.has(uuid));
    assert.deepEqual(conductor.calls.slice(-2), ['Instance.save', 'Instance.destroy']);
  });

  it("a snapshot walks nova's task states from image_snapshot_pending to none, each under its guard", async () => {
    const { ep, instance, uuid } = await startAndBuild();
    conductor.instances.get(uuid)!.task_state = 'image_snapshot_pending';
    agent.snapshotPolls = 3;
    const before = conductor.saves.length;
    await invoke(ep, 'snapshot_instance', {}, { instance, image_id: 'snap-1' });
    const walk = conductor.saves.slice(before).map((s) => [s.changes.task_state, s.kwargs.expected_task_state]);
    assert.deepEqual(walk[0], ['image_snapshot', 'image_snapshot_pending']);
    assert.deepEqual(walk.at(-1), [null, 'image_uploading']);
    // Each save is guarded by the state the one before it wrote.
    for (let i = 1; i < walk.length; i++) assert.equal(walk[i]![1], walk[i - 1]![0]);
  });

  it("saves network_info as the instance's InstanceInfoCache (1.5), the model as JSON text, through the conductor", async () => {
    await plane.start();
    const { uuid } = seedBuild();
    const vif = { id: 'port-1', address: 'fa:16:3e:00:00:01', network: { id: 'net-1', subnets: [{ cidr: '10.77.0.0/24', ips: [{ address: '10.77.0.5' }] }] } };
    await plane.saveNetworkInfo({ request_id: 'req-1' }, uuid, [vif]);
    assert.equal(conductor.calls.at(-1), 'InstanceInfoCache.save');
    assert.deepEqual(JSON.parse(conductor.infoCaches.get(uuid)!), [vif]);
  });

  it('a failed build is an instance fault and error in nova too', async () => {
    await plane.start();
    const { msg, uuid } = seedBuild();
    agent.failNext('createInstance', agentError('RUNTIME_UNAVAILABLE', 'boom'));
    await invoke(computeEndpoint(manager, agent), 'build_and_run_instance', {}, msg.args);
    assert.equal(conductor.instances.get(uuid)!.vm_state, 'error');
    assert.equal(conductor.faults.length, 1);
    assert.equal(conductor.faults[0]!.instance_uuid, uuid);
  });

  it('set_host_enabled toggles COMPUTE_STATUS_DISABLED on the provider', async () => {
    await plane.start();
    const ep = computeEndpoint(manager, agent);
    assert.equal(await invoke(ep, 'set_host_enabled', {}, { enabled: false }), 'disabled');
    assert.ok(placement.providers.get(plane.providerUuid!)!.traits.includes('COMPUTE_STATUS_DISABLED'));
    assert.equal(await invoke(ep, 'set_host_enabled', {}, { enabled: true }), 'enabled');
    assert.ok(!placement.providers.get(plane.providerUuid!)!.traits.includes('COMPUTE_STATUS_DISABLED'));
    await assert.rejects(async () => invoke(ep, 'set_host_enabled', {}, { enabled: 'no' }), /enabled/);
  });

  it('reaps the container of a server nova deleted while the node was away', async () => {
    const { uuid } = await startAndBuild();
    assert.deepEqual(await manager.reapDeletedElsewhere(), [], 'nothing to reap while nova has it');
    conductor.instances.get(uuid)!.deleted = true;
    assert.deepEqual(await manager.reapDeletedElsewhere(), [uuid]);
    assert.equal(await agent.getInstance(uuid), null);
    const row = await store.get(uuid);
    assert.deepEqual([row?.vm_state, row?.task_state, row?.power_state, row?.deleted], ['deleted', null, 0, true]);
    assert.ok(row?.terminated_at instanceof Date, 'a container had run: its termination time is recorded');
  });

  it('after a restart an instance it never saw is read from nova before saving', async () => {
    await plane.start();
    const { uuid } = seedBuild();
    await plane.saveInstance({}, uuid, { task_state: null }, ['scheduling', null]);
    assert.ok(conductor.calls.includes('Instance.get_by_uuid'));
  });

  it("the dispatcher step hands each message's instance to the plane, which saves it without asking nova for it", async () => {
    await plane.start();
    const { msg, uuid } = seedBuild();
    new Dispatcher([computeEndpoint(manager, agent)]).resolve(parseRequest(msg));
    await plane.saveInstance({}, uuid, { task_state: null }, ['scheduling', null]);
    assert.ok(!conductor.calls.includes('Instance.get_by_uuid'));
  });
  it('resizes on this host in nova: task states under their guards, the migration saved, Placement allocations as nova-compute moves them', async () => {
    const { uuid } = await startAndBuild();
    const prim = () => ({
      'nova_object.name': 'Instance',
      'nova_object.namespace': 'nova',
      'nova_object.version': '2.7',
      'nova_object.data': { ...conductor.instances.get(uuid)! },
    });
    const flavor = flavorPrimitive({ vcpus: 2, memory_mb: 256, name: 'big' });
    const move = async () => {
      const migration = migrationPrimitive({ instance_uuid: uuid, host: 'berth1' });
      const muuid = String((migration['nova_object.data'] as { uuid: string }).uuid);
      conductor.migrations.set(muuid, { ...(migration['nova_object.data'] as Record<string, unknown>) });
      // What the conductor's MigrationTask and the scheduler leave: the old flavor held by the migration, the new by the instance.
      placement.allocations.set(muuid, { VCPU: 1, MEMORY_MB: 128 });
      placement.allocations.set(uuid, { VCPU: 2, MEMORY_MB: 256 });
      // nova-api set resize_prep before the conductor cast prep_resize.
      conductor.instances.get(uuid)!.task_state = 'resize_prep';
      const ep = computeEndpoint(manager, agent);
      await invoke(ep, 'prep_resize', {}, prepResize(prim(), flavor, migration, 'berth1').args as Record<string, unknown>);
      return { ep, migration, muuid };
    };

    const before = conductor.instances.get(uuid)!.memory_mb;
    const first = await move();
    const inst = conductor.instances.get(uuid)!;
    assert.equal(inst.vm_state, 'resized');
    assert.equal(inst.task_state, null);
    assert.equal(inst.memory_mb, 256);
    assert.equal((inst.flavor as Primitive)['nova_object.data'].name, 'big');
    assert.equal(conductor.migrations.get(first.muuid)!.status, 'finished');
    const guards = conductor.saves
      .filter((s) => s.uuid === uuid && 'expected_task_state' in s.kwargs)
      .map((s) => [s.changes.task_state, s.kwargs.expected_task_state]);
    assert.deepEqual(guards.slice(-5), [
      ['resize_prep', 'resize_prep'],
      ['resize_migrating', ['resize_prep']],
      ['resize_migrated', 'resize_migrating'],
      ['resize_finish', ['resize_migrated']],
      [null, 'resize_finish'],
    ]);
    // nova-api sets resize_reverting (and the migration reverting) before it casts revert_resize.
    conductor.instances.get(uuid)!.task_state = 'resize_reverting';
    await invoke(first.ep, 'revert_resize', {}, resizeDecision('revert_resize', prim(), first.migration).args as Record<string, unknown>);
    assert.equal(conductor.instances.get(uuid)!.vm_state, 'active');
    assert.equal(conductor.instances.get(uuid)!.memory_mb, before);
    assert.equal(conductor.migrations.get(first.muuid)!.status, 'reverted');
    assert.deepEqual(placement.allocations.get(uuid), { VCPU: 1, MEMORY_MB: 128 });
    assert.equal(placement.allocations.has(first.muuid), false);

    const second = await move();
    await invoke(second.ep, 'confirm_resize', {}, resizeDecision('confirm_resize', prim(), second.migration).args as Record<string, unknown>);
    assert.equal(conductor.instances.get(uuid)!.vm_state, 'active');
    assert.equal(conductor.migrations.get(second.muuid)!.status, 'confirmed');
    assert.deepEqual(placement.allocations.get(uuid), { VCPU: 2, MEMORY_MB: 256 });
    assert.equal(placement.allocations.has(second.muuid), false);
  });
});
