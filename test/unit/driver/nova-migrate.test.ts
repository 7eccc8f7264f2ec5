import { strict as assert } from 'node:assert';
import { silentLogger } from '../../../common/log.js';
import { berthEndpoint } from '../../../driver/compute/berth-endpoint.js';
import { computeEndpoint } from '../../../driver/compute/endpoint.js';
import { ComputeManager } from '../../../driver/compute/manager.js';
import { InstanceStore } from '../../../driver/compute/store.js';
import { openDriverDatabase } from '../../../driver/db/index.js';
import type { Endpoint } from '../../../driver/rpc/dispatcher.js';
import { NovaControlPlane } from '../../../driver/nova/plane.js';
import {
  buildAndRunInstance,
  flavorPrimitive,
  imageDict,
  instancePrimitive,
  migrationPrimitive,
  prepResize,
  resizeDecision,
} from '../../../tools/lib/nova-requests.js';
import { InProcessCasts } from '../../support/in-process-casts.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';
import { FakeImageService } from '../../fakes/glance-images.js';
import { FakeConductor } from '../../fakes/nova-conductor.js';
import { FakePlacement } from '../../fakes/placement.js';
import { FakePublisher } from '../../fakes/publisher.js';
import { testNotifier, testResources, deliver, TEST_CTX } from '../../support/driver-fixtures.js';

const CTX = TEST_CTX;
const resources = testResources({ memory_mb: 4096, reserved_host_memory_mb: 0 });

const invoke = (ep: Endpoint, msg: Record<string, unknown>): Promise<unknown> => deliver(ep, msg, CTX);

interface Node {
  plane: NovaControlPlane;
  store: InstanceStore;
  agent: FakeAgentClient;
  compute: Endpoint;
  berth: Endpoint;
}

type Row = Record<string, unknown>;
const memoryOf = (f: unknown): unknown => (f as { 'nova_object.data'?: { memory_mb?: unknown } } | null)?.['nova_object.data']?.memory_mb ?? null;

/**
 * A resize to another node in nova mode, as nova's own database sees it: two nodes with their own
 * records, one (fake) nova-conductor and Placement. What nova-api and the conductor do is done by
 * the test: the task state each API call sets, the Migration, and the allocations the scheduler
 * and the conductor move before prep_resize.
 */
describe('nova mode: resize to another node, as nova records it (fake conductor and placement)', () => {
  let conductor: FakeConductor;
  let placement: FakePlacement;
  let nodes: Record<string, Node>;
  let casts: InProcessCasts;
  const small = { vcpus: 1, memory_mb: 128, name: 'small' };
  const big = { vcpus: 2, memory_mb: 256, name: 'big' };

  beforeEach(async () => {
    conductor = new FakeConductor();
    placement = new FakePlacement();
    casts = new InProcessCasts((host, ns) => (ns === 'berth' ? nodes[host]!.berth : nodes[host]!.compute), CTX);
    nodes = {};
    const images = new FakeImageService();
    for (const host of ['n1', 'n2']) {
      const store = new InstanceStore(await openDriverDatabase('sqlite://'));
      const agent = new FakeAgentClient();
      agent.snapshotPolls = 0;
      const plane = new NovaControlPlane({
        host,
        node: host,
        serviceVersion: 64,
        reportIntervalSeconds: 3600,
        updateIntervalSeconds: 3600,
        hostIp: '127.0.0.1',
        resources,
        usage: async () => ({ vcpus_used: 0, memory_mb_used: 0, local_gb_used: 0, running_vms: 0, current_workload: 0 }),
        conductor,
        placement,
        log: silentLogger(),
      });
      const notifier = testNotifier(new FakePublisher(), host);
      const manager = new ComputeManager({ host, node: host, store, agent, notifier, resources, images, plane, peers: casts.peers(), log: silentLogger() });
      await plane.start();
      nodes[host] = { plane, store, agent, compute: computeEndpoint(manager, agent), berth: berthEndpoint(host, store, manager) };
    }
  });
  afterEach(async () => {
    for (const n of Object.values(nodes)) {
      await n.plane.stop();
      await n.store.close();
    }
  });

  /** nova's instance as the conductor sends it: the three flavors loaded together. */
  const primitiveOf = (row: Row): Record<string, unknown> => {
    const p = instancePrimitive({ uuid: String(row.uuid), image_id: 'img', flavor: small });
    return { ...p, 'nova_object.data': { ...(p['nova_object.data'] as Row), ...row } };
  };
  const novaRow = (uuid: string): Row => conductor.instances.get(uuid)!;

  /** Built on n1, then resized by nova-api and the conductor towards n2 (prep_resize), every cast delivered. */
  const resized = async () => {
    const inst = instancePrimitive({ image_id: 'img', flavor: small });
    const data = inst['nova_object.data'] as Row;
    Object.assign(data, { old_flavor: null, new_flavor: null });
    const uuid = String(data.uuid);
    conductor.addInstance(inst as never);
    await invoke(nodes.n1!.compute, buildAndRunInstance(inst, imageDict({ id: 'img' })));
    assert.equal(novaRow(uuid).host, 'n1');
    // nova-api: task resize_prep and the Migration; the conductor: the source's allocations to the
    // migration consumer, the scheduler's claim of the new flavor on the destination for the instance.
    Object.assign(novaRow(uuid), { task_state: 'resize_prep' });
    const migration = migrationPrimitive({ instance_uuid: uuid, host: 'n1', dest: null });
    const muuid = String((migration['nova_object.data'] as Row).uuid);
    conductor.migrations.set(muuid, { ...(migration['nova_object.data'] as Row) });
    placement.allocations.set(muuid, { VCPU: 1, MEMORY_MB: 128 });
    placement.allocations.set(uuid, { VCPU: 2, MEMORY_MB: 256 });
    await invoke(nodes.n2!.compute, prepResize(primitiveOf(novaRow(uuid)), flavorPrimitive(big), migration, 'n2'));
    await casts.settle();
    assert.deepEqual(casts.failures, []);
    return { uuid, muuid, migration };
  };

  it('finish_resize leaves nova with the instance on the destination, resized, the old flavor kept for a revert', async () => {
    const { uuid, muuid } = await resized();
    const row = novaRow(uuid);
    assert.deepEqual([row.host, row.node, row.vm_state, row.task_state], ['n2', 'n2', 'resized', null]);
    assert.deepEqual([memoryOf(row.flavor), memoryOf(row.old_flavor), memoryOf(row.new_flavor)], [256, 128, 256]);
    const m = conductor.migrations.get(muuid)!;
    assert.deepEqual([m.status, m.dest_compute, m.dest_node], ['finished', 'n2', 'n2']);
    // Placement as the conductor left it: nothing moves until confirm or revert.
    assert.deepEqual(placement.allocations.get(muuid), { VCPU: 1, MEMORY_MB: 128 });
    assert.deepEqual(placement.allocations.get(uuid), { VCPU: 2, MEMORY_MB: 256 });
    assert.equal(nodes.n1!.agent.instances.get(uuid)!.power_state, 'stopped');
    assert.equal(nodes.n2!.agent.instances.get(uuid)!.power_state, 'running');
  });

  it('confirm (on the source): the migration consumer released, the old container gone, the stashed flavors cleared', async () => {
    const { uuid, muuid, migration } = await resized();
    await invoke(nodes.n1!.compute, resizeDecision('confirm_resize', primitiveOf(novaRow(uuid)), migration));
    await casts.settle();
    assert.deepEqual(casts.failures, []);
    const row = novaRow(uuid);
    assert.deepEqual([row.host, row.vm_state, row.task_state], ['n2', 'active', null]);
    assert.deepEqual([memoryOf(row.flavor), memoryOf(row.old_flavor), memoryOf(row.new_flavor)], [256, null, null]);
    assert.equal(conductor.migrations.get(muuid)!.status, 'confirmed');
    assert.equal(placement.allocations.has(muuid), false);
    assert.deepEqual(placement.allocations.get(uuid), { VCPU: 2, MEMORY_MB: 256 });
    assert.equal(nodes.n1!.agent.instances.has(uuid), false);
    assert.equal(nodes.n2!.agent.instances.get(uuid)!.power_state, 'running');
  });

  it('revert (on the destination, then the source): the original running on the source with its flavor and allocations', async () => {
    const { uuid, muuid, migration } = await resized();
    // nova-api's revert_resize: it needs the old flavor (its quota check reads it), sets the task and the migration reverting.
    assert.equal(memoryOf(novaRow(uuid).old_flavor), 128);
    Object.assign(novaRow(uuid), { task_state: 'resize_reverting' });
    conductor.migrations.get(muuid)!.status = 'reverting';
    await invoke(nodes.n2!.compute, resizeDecision('revert_resize', primitiveOf(novaRow(uuid)), migration));
    await casts.settle();
    assert.deepEqual(casts.failures, []);
    const row = novaRow(uuid);
    assert.deepEqual([row.host, row.node, row.vm_state, row.task_state], ['n1', 'n1', 'active', null]);
    assert.deepEqual([memoryOf(row.flavor), memoryOf(row.old_flavor), memoryOf(row.new_flavor)], [128, null, null]);
    assert.equal(conductor.migrations.get(muuid)!.status, 'reverted');
    assert.equal(placement.allocations.has(muuid), false);
    assert.deepEqual(placement.allocations.get(uuid), { VCPU: 1, MEMORY_MB: 128 });
    assert.equal(nodes.n2!.agent.instances.has(uuid), false);
    assert.equal(nodes.n1!.agent.instances.get(uuid)!.power_state, 'running');
  });
});
