import { strict as assert } from 'node:assert';
import { agentError } from '../../../agent/client/errors.js';
import { silentLogger } from '../../../common/log.js';
import { ComputeManager } from '../../../driver/compute/manager.js';
import { hostResources } from '../../../driver/compute/resources.js';
import { InstanceStore } from '../../../driver/compute/store.js';
import { computeEndpoint, UNSUPPORTED_METHODS } from '../../../driver/compute/endpoint.js';
import { canStart } from '../../../driver/compute/states.js';
import { openDriverDatabase } from '../../../driver/db/index.js';
import type { Endpoint } from '../../../driver/rpc/dispatcher.js';
import { RpcFailure } from '../../../driver/rpc/failure.js';
import {
  buildAndRunInstance,
  imageDict,
  instancePrimitive,
  instanceRequest,
  shelveInstance,
  shelveOffloadInstance,
  unshelveInstance,
} from '../../../tools/lib/nova-requests.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';
import { FakeImageService } from '../../fakes/glance-images.js';
import { FakePublisher } from '../../fakes/publisher.js';
import { testNotifier, deliver } from '../../support/driver-fixtures.js';

const resources = hostResources(
  {
    vcpus: 2,
    memory_mb: 512,
    disk_gb: 10,
    reserved_host_cpus: 0,
    reserved_host_memory_mb: 0,
    reserved_host_disk_mb: 0,
    cpu_allocation_ratio: 1,
    ram_allocation_ratio: 1,
    disk_allocation_ratio: 1,
  },
  '/',
);

/** Runs a method as the dispatcher does: the endpoint's deserialize step, then the handler. */
const invoke = (ep: Endpoint, msg: Record<string, unknown>): Promise<unknown> => deliver(ep, msg);

const flavor = { vcpus: 1, memory_mb: 256, name: 'm1' };

describe('shelve, shelve offload and unshelve (fake agent and image service, in-memory database)', () => {
  let agent: FakeAgentClient;
  let pub: FakePublisher;
  let images: FakeImageService;
  let store: InstanceStore;
  const stores: InstanceStore[] = [];

  const node = async (host: string, shelvedOffloadTime = 0) => {
    const s = new InstanceStore(await openDriverDatabase('sqlite://'));
    stores.push(s);
    const notifier = testNotifier(pub, host);
    const manager = new ComputeManager({ host, node: host, store: s, agent, notifier, resources, images, shelvedOffloadTime, log: silentLogger() });
    return { store: s, manager, ep: computeEndpoint(manager, agent) };
  };

  let manager: ComputeManager;
  let ep: Endpoint;
  const setUp = async (shelvedOffloadTime = 0) => {
    ({ store, manager, ep } = await node('n1', shelvedOffloadTime));
  };

  beforeEach(() => {
    agent = new FakeAgentClient();
    agent.snapshotPolls = 0;
    pub = new FakePublisher();
    images = new FakeImageService();
    images.add('img', { name: 'base', status: 'active' });
  });
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
  });

  /** An active instance, and the primitive a control plane would send for it in a given state. */
  const boot = async () => {
    const inst = instancePrimitive({ image_id: 'img', flavor });
    const uuid = (inst['nova_object.data'] as { uuid: string }).uuid;
    await invoke(ep, buildAndRunInstance(inst, imageDict({ id: 'img' })));
    const now = (vm_state = 'active', task_state: string | null = null) =>
      instancePrimitive({ uuid, image_id: 'img', flavor, host: 'n1', vm_state, task_state });
    return { uuid, now };
  };
  /** What nova-api does before it casts shelve_instance: the `<name>-shelved` snapshot image. */
  const shelveImage = async () => (await images.createImage({ name: 'x-shelved', container_format: 'docker', disk_format: 'raw' })).id;
  const row = async (uuid: string) => (await store.get(uuid))!;
  const sysmeta = async (uuid: string) => (JSON.parse((await row(uuid)).nova) as { system_metadata?: Record<string, string> }).system_metadata ?? {};
  const failureOf = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (err) {
      return err;
    }
    assert.fail('expected a failure');
  };

  it('no longer lists the three methods as unsupported, and the table allows nova-api states only', () => {
    for (const m of ['shelve_instance', 'shelve_offload_instance', 'unshelve_instance']) assert.ok(!(UNSUPPORTED_METHODS as readonly string[]).includes(m), m);
    for (const vm of ['active', 'stopped', 'paused', 'suspended'] as const) assert.ok(canStart('shelve', vm, null), vm);
    assert.ok(canStart('shelve', 'active', 'shelving'));
    for (const vm of ['building', 'error', 'resized', 'shelved', 'shelved_offloaded', 'soft-delete'] as const) assert.ok(!canStart('shelve', vm, null), vm);
    assert.ok(!canStart('shelve', 'active', 'image_snapshot'));
    assert.ok(canStart('shelve_offload', 'shelved', 'shelving_offloading'));
    assert.ok(!canStart('shelve_offload', 'active', null));
    assert.ok(canStart('unshelve', 'shelved_offloaded', 'unshelving'));
    assert.ok(!canStart('unshelve', 'shelved', null));
    assert.ok(canStart('start_shelved', 'shelved', 'powering-on'));
  });

  it('shelve with shelved_offload_time 0: snapshot, container removed, claim released, shelved_offloaded; unshelve boots the snapshot and deletes it', async () => {
    await setUp(0);
    const { uuid, now } = await boot();
    const imageId = await shelveImage();
    pub.published.length = 0;
    await invoke(ep, shelveInstance(now('active', 'shelving'), imageId));

    const r = await row(uuid);
    assert.deepEqual([r.vm_state, r.task_state, r.power_state], ['shelved_offloaded', null, 4]);
    assert.ok(!agent.instances.has(uuid), 'the container is gone');
    assert.ok(agent.calls.includes('snapshotInstance'));
    assert.deepEqual(await manager.usage(), { VCPU: 0, MEMORY_MB: 0, DISK_GB: 0 });
    const sm = await sysmeta(uuid);
    assert.equal(sm.shelved_image_id, imageId);
    assert.equal(sm.shelved_host, 'n1');
    assert.ok(!Number.isNaN(Date.parse(sm.shelved_at!)));
    assert.deepEqual(pub.events(), ['instance.shelve.start', 'instance.shelve.end', 'instance.shelve_offload.start', 'instance.shelve_offload.end']);
    assert.deepEqual(
      (await store.actions(uuid)).map((a) => `${a.action}:${a.result}`),
      ['create:Success', 'shelve:Success', 'shelve_offload:Success'],
    );
    // The power-state sync leaves it alone: no container is expected.
    assert.equal((await manager.syncPowerStates()).corrected, 0);
    assert.equal((await row(uuid)).vm_state, 'shelved_offloaded');

    pub.published.length = 0;
    await invoke(ep, unshelveInstance(now('shelved_offloaded', 'unshelving'), imageDict({ id: imageId }), 'n1'));
    const u = await row(uuid);
    assert.deepEqual([u.vm_state, u.task_state, u.power_state, u.host, u.image_ref], ['active', null, 1, 'n1', 'img']);
    assert.equal(agent.instances.get(uuid)?.spec.image_id, imageId, 'the container runs the snapshot');
    assert.equal(await images.getImage(imageId), null, 'the snapshot is deleted');
    assert.deepEqual(await sysmeta(uuid), {});
    assert.deepEqual(await manager.usage(), { VCPU: 1, MEMORY_MB: 256, DISK_GB: 1 });
    assert.deepEqual(pub.events(), ['instance.unshelve.start', 'instance.unshelve.end']);
  });

  it('shelve with shelved_offload_time -1 keeps the stopped container and its claim; start_instance unshelves it, shelve_offload_instance offloads it', async () => {
    await setUp(-1);
    const { uuid, now } = await boot();
    const first = await shelveImage();
    await invoke(ep, shelveInstance(now(), first));
    let r = await row(uuid);
    assert.deepEqual([r.vm_state, r.task_state, r.power_state], ['shelved', null, 4]);
    assert.equal(agent.instances.get(uuid)?.power_state, 'stopped');
    assert.deepEqual(await manager.usage(), { VCPU: 1, MEMORY_MB: 256, DISK_GB: 1 });

    // nova's conductor unshelves a shelved (not offloaded) instance with start_instance.
    pub.published.length = 0;
    await invoke(ep, instanceRequest('start_instance', now('shelved', 'powering-on')));
    r = await row(uuid);
    assert.deepEqual([r.vm_state, r.task_state, r.power_state], ['active', null, 1]);
    assert.equal(agent.instances.get(uuid)?.power_state, 'running');
    assert.equal(await images.getImage(first), null, 'the unneeded snapshot is deleted');
    assert.deepEqual(await sysmeta(uuid), {});
    assert.deepEqual(pub.events(), ['instance.power_on.start', 'instance.power_on.end']);

    const second = await shelveImage();
    await invoke(ep, shelveInstance(now(), second));
    await invoke(ep, shelveOffloadInstance(now('shelved', 'shelving_offloading')));
    r = await row(uuid);
    assert.deepEqual([r.vm_state, r.task_state], ['shelved_offloaded', null]);
    assert.ok(!agent.instances.has(uuid));
    assert.deepEqual(await manager.usage(), { VCPU: 0, MEMORY_MB: 0, DISK_GB: 0 });
    assert.ok(await images.getImage(second), 'the snapshot stays until the unshelve');
  });

  it('a paused instance is thawed and stopped before its snapshot', async () => {
    await setUp(0);
    const { uuid, now } = await boot();
    await invoke(ep, instanceRequest('pause_instance', now()));
    await invoke(ep, shelveInstance(now('paused'), await shelveImage()));
    assert.equal((await row(uuid)).vm_state, 'shelved_offloaded');
    const actions = agent.calls.filter((c) => c === 'instanceAction').length;
    assert.ok(actions >= 3, 'pause, unpause, stop');
  });

  it('refuses a shelve, offload or unshelve from a wrong state with InstanceInvalidState and changes nothing', async () => {
    await setUp(-1);
    const { uuid, now } = await boot();
    const imageId = await shelveImage();
    await invoke(ep, instanceRequest('stop_instance', now()));
    const before = agent.calls.length;
    let err = await failureOf(invoke(ep, shelveOffloadInstance(now('stopped'))));
    assert.ok(err instanceof RpcFailure && err.className === 'InstanceInvalidState', String(err));
    err = await failureOf(invoke(ep, unshelveInstance(now('stopped'), imageDict({ id: imageId }), 'n1')));
    assert.ok(err instanceof RpcFailure && err.className === 'InstanceInvalidState', String(err));
    assert.equal(agent.calls.length, before, 'the agent was not asked to do anything');
    assert.deepEqual([(await row(uuid)).vm_state, (await row(uuid)).task_state], ['stopped', null]);

    await invoke(ep, shelveInstance(now('stopped'), imageId));
    err = await failureOf(invoke(ep, shelveInstance(now('shelved'), await shelveImage())));
    assert.ok(err instanceof RpcFailure && err.className === 'InstanceInvalidState', 'a shelved instance is not shelved twice');
    assert.equal((await row(uuid)).vm_state, 'shelved');

    err = await failureOf(invoke(ep, shelveInstance(instancePrimitive({ image_id: 'img', flavor }), imageId)));
    assert.ok(err instanceof RpcFailure && err.className === 'InstanceNotFound', 'an instance of another node');
  });

  it('a failed snapshot leaves no queued image, a fault and the task cleared', async () => {
    await setUp(0);
    const { uuid, now } = await boot();
    const imageId = await shelveImage();
    agent.snapshotFails = { code: 'SNAPSHOT_FAILED', message: 'disk full' };
    pub.published.length = 0;
    await failureOf(invoke(ep, shelveInstance(now('active', 'shelving'), imageId)));
    const r = await row(uuid);
    assert.equal(r.task_state, null);
    assert.notEqual(r.vm_state, 'shelved');
    assert.equal(await images.getImage(imageId), null, 'the queued image is removed');
    assert.match((await store.latestFault(uuid))!.message, /disk full/);
    assert.deepEqual(pub.events(), ['instance.shelve.start'], 'nova sends no shelve.error');
  });

  it('a failed unshelve leaves shelved_offloaded with a fault, no container, no claim, and the snapshot intact; a retry succeeds', async () => {
    await setUp(0);
    const { uuid, now } = await boot();
    const imageId = await shelveImage();
    await invoke(ep, shelveInstance(now(), imageId));
    agent.failNext('createInstance', agentError('IMAGE_NOT_FOUND', `image ${imageId} not found in the image store`));
    await failureOf(invoke(ep, unshelveInstance(now('shelved_offloaded', 'unshelving'), imageDict({ id: imageId }), 'n1')));
    const r = await row(uuid);
    assert.deepEqual([r.vm_state, r.task_state], ['shelved_offloaded', null]);
    const fault = (await store.latestFault(uuid))!;
    assert.equal(fault.details, 'ImageNotFound');
    assert.ok(!agent.instances.has(uuid));
    assert.deepEqual(await manager.usage(), { VCPU: 0, MEMORY_MB: 0, DISK_GB: 0 });
    assert.ok(await images.getImage(imageId), 'the snapshot is kept');
    assert.equal((await sysmeta(uuid)).shelved_image_id, imageId);
    assert.equal((await store.actions(uuid)).at(-1)!.result, 'Error');

    await invoke(ep, unshelveInstance(now('shelved_offloaded', 'unshelving'), imageDict({ id: imageId }), 'n1'));
    assert.equal((await row(uuid)).vm_state, 'active');
  });

  it('an unshelve that does not fit fails with ComputeResourcesUnavailable and claims nothing', async () => {
    await setUp(0);
    const { uuid, now } = await boot();
    const imageId = await shelveImage();
    await invoke(ep, shelveInstance(now(), imageId));
    // Two others take the node's two vCPUs meanwhile.
    for (let n = 0; n < 2; n++) await invoke(ep, buildAndRunInstance(instancePrimitive({ image_id: 'img', flavor }), imageDict({ id: 'img' })));
    const creates = agent.calls.filter((c) => c === 'createInstance').length;
    await failureOf(invoke(ep, unshelveInstance(now('shelved_offloaded', 'unshelving'), imageDict({ id: imageId }), 'n1')));
    assert.equal((await store.latestFault(uuid))!.details, 'ComputeResourcesUnavailable');
    assert.deepEqual([(await row(uuid)).vm_state, (await row(uuid)).task_state], ['shelved_offloaded', null]);
    assert.deepEqual(await manager.usage(), { VCPU: 2, MEMORY_MB: 512, DISK_GB: 2 });
    assert.equal(agent.calls.filter((c) => c === 'createInstance').length, creates, 'no container was made');
  });

  it('unshelves on a node that never had the instance, from the instance nova sends', async () => {
    await setUp(0);
    const { uuid, now } = await boot();
    const imageId = await shelveImage();
    await invoke(ep, shelveInstance(now(), imageId));
    const shelved = await sysmeta(uuid);
    // Another node with its own database (the models bind to the newest one opened).
    const other = await node('n2');
    assert.equal(await other.store.get(uuid), null);
    const inst = now('shelved_offloaded', 'unshelving');
    const data = inst['nova_object.data'] as Record<string, unknown>;
    Object.assign(data, { host: null, node: null, system_metadata: { ...shelved, image_base_image_ref: 'img' } });
    await invoke(other.ep, unshelveInstance(inst, null, 'n2'));
    const r = (await other.store.get(uuid))!;
    assert.deepEqual([r.vm_state, r.task_state, r.host], ['active', null, 'n2']);
    assert.equal(agent.instances.get(uuid)?.spec.image_id, imageId, 'booted from shelved_image_id');
    assert.deepEqual(await other.manager.usage(), { VCPU: 1, MEMORY_MB: 256, DISK_GB: 1 });
    assert.equal(await images.getImage(imageId), null);
  });

  it('a restart after an interrupted unshelve removes any half-made container and clears the task', async () => {
    await setUp(0);
    const { uuid, now } = await boot();
    await invoke(ep, shelveInstance(now(), await shelveImage()));
    await store.update(await row(uuid), { task_state: 'spawning' });
    await agent.createInstance(uuid, JSON.parse((await row(uuid)).spec));
    assert.equal(await manager.recoverInterrupted(), 1);
    assert.deepEqual([(await row(uuid)).vm_state, (await row(uuid)).task_state], ['shelved_offloaded', null]);
    assert.ok(!agent.instances.has(uuid));
    assert.deepEqual(await manager.usage(), { VCPU: 0, MEMORY_MB: 0, DISK_GB: 0 });
  });

  it("offloads shelved instances once shelved_offload_time has passed (nova's _poll_shelved_instances)", async () => {
    await setUp(600);
    const { uuid, now } = await boot();
    await invoke(ep, shelveInstance(now(), await shelveImage()));
    assert.equal((await row(uuid)).vm_state, 'shelved');
    assert.deepEqual(await manager.shelves.pollShelved(Date.now() + 599_000), []);
    assert.deepEqual(await manager.shelves.pollShelved(Date.now() + 601_000), [uuid]);
    assert.equal((await row(uuid)).vm_state, 'shelved_offloaded');
    assert.ok(!agent.instances.has(uuid));
  });
});
