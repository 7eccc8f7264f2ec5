import { strict as assert } from 'node:assert';
import { agentError } from '../../../agent/client/errors.js';
import { silentLogger } from '../../../common/log.js';
import { computeEndpoint } from '../../../driver/compute/endpoint.js';
import { ComputeManager } from '../../../driver/compute/manager.js';
import { InstanceStore } from '../../../driver/compute/store.js';
import { openDriverDatabase } from '../../../driver/db/index.js';
import { MigrationRow } from '../../../driver/db/models.js';
import type { Endpoint } from '../../../driver/rpc/dispatcher.js';
import { RpcFailure } from '../../../driver/rpc/failure.js';
import { buildAndRunInstance, evacuateInstance, imageDict, instancePrimitive, instanceRequest, migrationPrimitive } from '../../../tools/lib/nova-requests.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';
import { FakePublisher } from '../../fakes/publisher.js';
import { testNotifier, testResources, deliver } from '../../support/driver-fixtures.js';

const resources = (memory_mb: number) => testResources({ memory_mb, reserved_host_memory_mb: 0 });

const invoke = (ep: Endpoint, msg: Record<string, unknown>): Promise<unknown> => deliver(ep, msg);

interface Node {
  host: string;
  agent: FakeAgentClient;
  pub: FakePublisher;
  manager: ComputeManager;
  ep: Endpoint;
}

/** Two compute nodes sharing one database (standalone with a shared [database] connection), each with its own agent. */
describe('evacuation (rebuild_instance recreate=True) between two nodes on one database', () => {
  let store: InstanceStore;
  let n1: Node;
  let n2: Node;
  const flavor = { vcpus: 1, memory_mb: 128, name: 'small' };

  const node = (host: string, memory = 1024): Node => {
    const agent = new FakeAgentClient();
    const pub = new FakePublisher();
    const notifier = testNotifier(pub, host);
    const manager = new ComputeManager({ host, node: host, store, agent, notifier, resources: resources(memory), log: silentLogger() });
    return { host, agent, pub, manager, ep: computeEndpoint(manager, agent) };
  };

  beforeEach(async () => {
    store = new InstanceStore(await openDriverDatabase('sqlite://'));
    n1 = node('n1');
    n2 = node('n2');
  });
  afterEach(() => store.close());

  const boot = async (on = n1) => {
    const inst = instancePrimitive({ image_id: 'img', flavor });
    const uuid = (inst['nova_object.data'] as { uuid: string }).uuid;
    await invoke(on.ep, buildAndRunInstance(inst, imageDict({ id: 'img' })));
    return uuid;
  };
  const now = async (uuid: string) => {
    const r = (await store.get(uuid))!;
    return instancePrimitive({ uuid, image_id: r.image_ref, flavor, host: r.host, vm_state: r.vm_state, task_state: r.task_state });
  };
  const evacuate = async (uuid: string, to = n2, o: { onSharedStorage?: boolean } = {}) => {
    const migration = migrationPrimitive({ instance_uuid: uuid, host: 'n1', dest: null, migration_type: 'evacuation', status: 'accepted' });
    await invoke(to.ep, evacuateInstance(await now(uuid), migration, o));
    return (migration['nova_object.data'] as { uuid: string }).uuid;
  };

  it('boots the instance from its image on the new node, records the new host and a done evacuation', async () => {
    const uuid = await boot();
    const mig = await evacuate(uuid);
    const row = (await store.get(uuid))!;
    assert.deepEqual([row.host, row.node, row.vm_state, row.task_state, row.power_state], ['n2', 'n2', 'active', null, 1]);
    assert.equal((await n2.agent.getInstance(uuid))?.power_state, 'running');
    // The old host is down: its container is still there until it returns.
    assert.ok(await n1.agent.getInstance(uuid));
    const m = (await store.getMigration(mig))!;
    assert.deepEqual([m.migration_type, m.source_compute, m.dest_compute, m.status], ['evacuation', 'n1', 'n2', 'done']);
    assert.deepEqual(n2.pub.events(), ['instance.rebuild.start', 'instance.rebuild.end']);
    // What rebuild.end announces is recorded already: the instance on its new host.
    const end = n2.pub.published.at(-1)!.message as { payload: { 'nova_object.data': { host: string } } };
    assert.equal(end.payload['nova_object.data'].host, 'n2');
    assert.deepEqual(
      (await store.actions(uuid)).map((a) => [a.action, a.result]),
      [
        ['create', 'Success'],
        ['evacuate', 'Success'],
      ],
    );
    // Counted once, on the new node only.
    assert.equal((await n2.manager.usage()).MEMORY_MB, 128);
    assert.equal((await n1.manager.usage()).MEMORY_MB, 0);
  });

  it('the returning old host removes its own leftover container only, and completes the migration', async () => {
    const uuid = await boot();
    const other = await boot();
    const mig = await evacuate(uuid);
    assert.deepEqual(await n1.manager.evacuations.reapEvacuated(), [uuid]);
    assert.equal(await n1.agent.getInstance(uuid), null);
    assert.ok(await n1.agent.getInstance(other), 'an instance that was not evacuated keeps its container');
    assert.ok(await n2.agent.getInstance(uuid), "the new host's container is untouched");
    assert.equal((await store.getMigration(mig))!.status, 'completed');
    assert.equal((await store.get(uuid))!.host, 'n2');
    assert.equal((await store.get(uuid))!.vm_state, 'active');
    // Nothing left to do the next time.
    assert.deepEqual(await n1.manager.evacuations.reapEvacuated(), []);
    // The new host never reaps what came to it.
    assert.deepEqual(await n2.manager.evacuations.reapEvacuated(), []);
    assert.ok(await n2.agent.getInstance(uuid));
  });

  it('a stopped instance is evacuated stopped', async () => {
    const uuid = await boot();
    await invoke(n1.ep, instanceRequest('stop_instance', await now(uuid), { clean_shutdown: true }));
    await evacuate(uuid);
    const row = (await store.get(uuid))!;
    assert.deepEqual([row.host, row.vm_state, row.power_state], ['n2', 'stopped', 4]);
    assert.equal((await n2.agent.getInstance(uuid))?.power_state, 'stopped');
  });

  it('an instance in error is evacuated to active', async () => {
    const uuid = await boot();
    await store.update((await store.get(uuid))!, { vm_state: 'error' });
    await evacuate(uuid);
    assert.equal((await store.get(uuid))!.vm_state, 'active');
  });

  it('a claim that does not fit fails the evacuation and leaves the instance as it was', async () => {
    const small = node('n3', 64);
    const uuid = await boot();
    await assert.rejects(evacuate(uuid, small), (e: RpcFailure) => e.className === 'ComputeResourcesUnavailable');
    const row = (await store.get(uuid))!;
    assert.deepEqual([row.host, row.vm_state, row.task_state], ['n1', 'active', null]);
    assert.equal(await small.agent.getInstance(uuid), null);
    const m = await MigrationRow.findOne({ where: { instance_uuid: uuid } });
    assert.equal(m?.status, 'failed');
    // A failed evacuation is not reaped by the old host: its container stays its own.
    assert.deepEqual(await n1.manager.evacuations.reapEvacuated(), []);
    assert.ok(await n1.agent.getInstance(uuid));
  });

  it('a spawn that fails leaves the instance in error with a fault, no container and a failed migration', async () => {
    const uuid = await boot();
    n2.agent.failNext('createInstance', agentError('IMAGE_NOT_FOUND', 'image img is not in the image service'));
    const mig = evacuate(uuid);
    await assert.rejects(mig);
    const row = (await store.get(uuid))!;
    assert.deepEqual([row.host, row.vm_state, row.task_state], ['n1', 'error', null]);
    assert.equal((await store.latestFault(uuid))?.details, 'ImageNotFound');
    assert.equal(await n2.agent.getInstance(uuid), null);
    assert.equal((await MigrationRow.findOne({ where: { instance_uuid: uuid } }))?.status, 'failed');
    assert.deepEqual(n2.pub.events(), ['instance.rebuild.start', 'instance.rebuild.error']);
  });

  it('refuses on_shared_storage (a container is never on shared storage) and an instance this host has already', async () => {
    const uuid = await boot();
    await assert.rejects(evacuate(uuid, n2, { onSharedStorage: true }), (e: RpcFailure) => e.className === 'InvalidSharedStorage');
    await assert.rejects(evacuate(uuid, n1), (e: RpcFailure) => e.className === 'InstanceExists');
    assert.equal((await store.get(uuid))!.host, 'n1');
  });

  it('a redelivered evacuation is ignored', async () => {
    const uuid = await boot();
    const migration = migrationPrimitive({ instance_uuid: uuid, host: 'n1', dest: null, migration_type: 'evacuation', status: 'accepted' });
    const msg = evacuateInstance(await now(uuid), migration);
    await invoke(n2.ep, msg);
    await invoke(n2.ep, msg);
    assert.deepEqual(n2.pub.events(), ['instance.rebuild.start', 'instance.rebuild.end']);
    assert.equal((await store.get(uuid))!.host, 'n2');
  });

  it('a node with no record of the instance (its own records, nova mode) records it from the primitive', async () => {
    const inst = instancePrimitive({ image_id: 'img', flavor, host: 'gone', vm_state: 'active', task_state: 'rebuilding' });
    const uuid = (inst['nova_object.data'] as { uuid: string }).uuid;
    await invoke(n2.ep, evacuateInstance(inst, null));
    const row = (await store.get(uuid))!;
    assert.deepEqual([row.host, row.vm_state, row.image_ref], ['n2', 'active', 'img']);
    assert.equal((await MigrationRow.findOne({ where: { instance_uuid: uuid } }))?.source_compute, 'gone');
    assert.ok(await n2.agent.getInstance(uuid));
  });

  it('the old host with a record of its own ends it when it reaps', async () => {
    const uuid = await boot();
    // As if n1 kept its own records: the record stays n1's while n2 boots it.
    await evacuate(uuid);
    await store.update((await store.get(uuid))!, { host: 'n1' });
    await n1.manager.evacuations.reapEvacuated();
    const row = (await store.get(uuid))!;
    assert.deepEqual([row.deleted, row.vm_state], [true, 'deleted']);
  });
});
