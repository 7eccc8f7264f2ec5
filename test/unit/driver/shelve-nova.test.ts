import { strict as assert } from 'node:assert';
import { silentLogger } from '../../../common/log.js';
import { openDriverDatabase } from '../../../driver/db/index.js';
import { ComputeManager } from '../../../driver/compute/manager.js';
import { InstanceStore } from '../../../driver/compute/store.js';
import { hostResources } from '../../../driver/compute/resources.js';
import { computeEndpoint } from '../../../driver/compute/endpoint.js';
import type { Endpoint } from '../../../driver/rpc/dispatcher.js';
import { Notifier } from '../../../driver/notify/notifier.js';
import type { NovaControlPlane } from '../../../driver/nova/plane.js';
import type { Primitive } from '../../../driver/nova/objects.js';
import { agentError } from '../../../agent/client/errors.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';
import { fixture as sharedFixture } from '../../support/fixtures.js';
import { FakeConductor } from '../../fakes/nova-conductor.js';
import { FakePlacement } from '../../fakes/placement.js';
import { FakePublisher } from '../../fakes/publisher.js';
import { TEST_RABBIT as rabbit, testNovaPlane } from '../../support/driver-fixtures.js';

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
const invoke = (ep: Endpoint, method: string, args: Record<string, unknown>) => {
  const spec = ep.methods[method]!;
  return spec.handler({}, ep.deserialize ? ep.deserialize(args, spec) : args);
};

describe('shelve in nova mode (fake conductor and placement)', () => {
  let conductor: FakeConductor;
  let placement: FakePlacement;
  let store: InstanceStore;
  let agent: FakeAgentClient;
  let plane: NovaControlPlane;
  let ep: Endpoint;

  beforeEach(async () => {
    conductor = new FakeConductor();
    placement = new FakePlacement();
    agent = new FakeAgentClient();
    agent.snapshotPolls = 3;
    store = new InstanceStore(await openDriverDatabase('sqlite://'));
    plane = testNovaPlane({ conductor, placement, resources });
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
    const manager = new ComputeManager({ host: 'berth1', node: 'berth1', store, agent, notifier, resources, plane, log: silentLogger() });
    ep = computeEndpoint(manager, agent);
    await plane.start();
  });
  afterEach(async () => {
    await plane.stop();
    await store.close();
  });

  /** The captured build cast (fixture 08), built; the instance as nova has it afterwards. */
  const built = async () => {
    const msg = fixture('08-conductor-to-compute-cast-build_and_run_instance.json').request.body['oslo.message'];
    const instance = msg.args.instance as Primitive;
    conductor.addInstance(instance);
    const uuid = String(instance['nova_object.data'].uuid);
    await invoke(ep, 'build_and_run_instance', msg.args);
    placement.allocations.set(uuid, { VCPU: 1, MEMORY_MB: 512 });
    return { instance, uuid, nova: () => conductor.instances.get(uuid)! };
  };

  it('shelves as nova-compute does: task states under their guards, system_metadata merged, allocations deleted before shelved_offloaded, then host and node cleared', async () => {
    const { instance, uuid, nova } = await built();
    nova().task_state = 'shelving';
    // nova-compute saves the system_metadata of the instance the message carried, with its own keys added.
    const sent = instance['nova_object.data'].system_metadata as Record<string, string>;
    const base = sent.image_base_image_ref;
    assert.ok(base);
    const before = conductor.saves.length;
    await invoke(ep, 'shelve_instance', { instance, image_id: 'snap-1', clean_shutdown: true, accel_uuids: [] });
    const walk = conductor.saves.slice(before).map((s) => [s.changes.vm_state ?? '', s.changes.task_state, s.kwargs.expected_task_state]);
    // The fake agent's snapshot goes freezing → uploading → active (no separate commit phase).
    assert.deepEqual(walk, [
      ['', 'shelving_image_uploading', 'shelving'],
      ['shelved', 'shelving_offloading', 'shelving_image_uploading'],
      ['shelved_offloaded', null, 'shelving_offloading'],
      ['', undefined, null],
    ]);
    const row = nova();
    assert.deepEqual([row.vm_state, row.task_state, row.host, row.node, row.launched_on], ['shelved_offloaded', null, null, null, null]);
    const sm = row.system_metadata as Record<string, string>;
    assert.equal(sm.image_base_image_ref, base, 'keys nova had are kept');
    assert.equal(sm.shelved_image_id, 'snap-1');
    assert.equal(sm.shelved_host, 'berth1');
    assert.ok(!placement.allocations.has(uuid), 'the allocations are deleted');
  });

  it('unshelve saves host and node, then active with the shelve keys removed; a failure deletes the allocations and clears the host again', async () => {
    const { instance, uuid, nova } = await built();
    nova().task_state = 'shelving';
    await invoke(ep, 'shelve_instance', { instance, image_id: 'snap-1', clean_shutdown: true, accel_uuids: [] });
    // The scheduler's allocations for the unshelve.
    placement.allocations.set(uuid, { VCPU: 1, MEMORY_MB: 512 });
    nova().task_state = 'unshelving';
    const image = { id: 'snap-1' };
    agent.failNext('createInstance', agentError('RUNTIME_UNAVAILABLE', 'dockerd is away'));
    await assert.rejects(
      Promise.resolve(invoke(ep, 'unshelve_instance', { instance, image, filter_properties: {}, node: 'berth1', request_spec: null, accel_uuids: [] })),
    );
    assert.deepEqual([nova().vm_state, nova().task_state, nova().host], ['shelved_offloaded', null, null]);
    assert.ok(!placement.allocations.has(uuid));
    assert.equal(conductor.faults.at(-1)!.instance_uuid, uuid);

    placement.allocations.set(uuid, { VCPU: 1, MEMORY_MB: 512 });
    nova().task_state = 'unshelving';
    await invoke(ep, 'unshelve_instance', { instance, image, filter_properties: {}, node: 'berth1', request_spec: null, accel_uuids: [] });
    const row = nova();
    assert.deepEqual([row.vm_state, row.task_state, row.host, row.node], ['active', null, 'berth1', 'berth1']);
    assert.equal((row.system_metadata as Record<string, string>).shelved_image_id, undefined);
    assert.ok(placement.allocations.has(uuid), 'the unshelved instance keeps its allocations');
  });
});
