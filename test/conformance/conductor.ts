import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { ConductorClient } from '../../driver/nova/conductor.js';
import { emptyPciPools, isPrimitive, mergeUpdates, newObject, withChanges, type Primitive } from '../../driver/nova/objects.js';
import { RemoteFailure } from '../../driver/rpc/caller.js';

/** What the suite needs from a conductor under test. */
export interface ConductorHarness {
  conductor: ConductorClient;
  /** A host name no Service or ComputeNode row has yet; the suite registers it. */
  host: string;
  /** Removes the rows the suite made for `host`, whatever state they were left in. */
  cleanup(): Promise<void>;
}

/** The service version a Zed control plane accepts (nova-control-plane.md §5.2). */
const SERVICE_VERSION = 64;
const NOVA_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function rejectsWithNova(p: Promise<unknown>, failureClass: string, status = 404): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof RemoteFailure, `expected a RemoteFailure, got ${String(err)}`);
    assert.equal(err.failureClass, failureClass);
    assert.equal(err.failureModule, 'nova.exception');
    assert.equal(err.status, status);
    return true;
  });
}

/** A small ComputeNode 1.19 with every non-nullable field (§5.3); never given a Placement provider. */
/** The fields of `found`, after checking it is a `name` object primitive at `version`. */
function primitiveData(found: unknown, name: string, version: string): Primitive['nova_object.data'] {
  assert.ok(isPrimitive(found), `expected a primitive, got ${JSON.stringify(found)}`);
  assert.equal(found['nova_object.name'], name);
  assert.equal(found['nova_object.version'], version);
  return found['nova_object.data'];
}

function computeNodeFor(host: string): Primitive {
  return newObject('ComputeNode', {
    uuid: randomUUID(),
    host,
    hypervisor_hostname: host,
    vcpus: 1,
    memory_mb: 512,
    local_gb: 1,
    vcpus_used: 0,
    memory_mb_used: 0,
    local_gb_used: 0,
    free_ram_mb: 512,
    free_disk_gb: 1,
    disk_available_least: 1,
    current_workload: 0,
    running_vms: 0,
    hypervisor_type: 'docker',
    hypervisor_version: 1,
    cpu_info: '{}',
    metrics: '[]',
    stats: {},
    host_ip: '127.0.0.1',
    numa_topology: null,
    supported_hv_specs: [],
    pci_device_pools: emptyPciPools(),
    cpu_allocation_ratio: 16,
    ram_allocation_ratio: 1.5,
    disk_allocation_ratio: 1,
  });
}

/**
 * One suite for every ConductorClient: the object calls a node makes to register, heartbeat and
 * find instances (nova-control-plane.md §5.2–§5.5), so the fake cannot drift from nova-conductor.
 * The cases run in order on one host, as a node's registration does.
 */
export function conductorConformance(name: string, makeHarness: () => Promise<ConductorHarness>): void {
  describe(`ConductorClient conformance: ${name}`, function () {
    this.timeout(60_000);
    let h: ConductorHarness;
    let c: ConductorClient;
    let service: Primitive;
    let node: Primitive;
    let instance: Primitive;
    const instances: Primitive[] = [];
    const lookupService = () => c.objectClassActionVersions('Service', 'get_by_host_and_binary', [h.host, 'nova-compute']);
    const lookupNode = () => c.objectClassActionVersions('ComputeNode', 'get_by_host_and_nodename', [h.host, h.host]);

    before(async () => {
      h = await makeHarness();
      c = h.conductor;
    });
    after(async () => {
      // A failed case may leave its instance; nova refuses to delete a service still hosting one.
      for (const i of instances) await c?.objectAction(withChanges(i, {}), 'destroy').catch(() => undefined);
      await h?.cleanup();
    });

    it('Service.get_by_host_and_binary answers null for a host it does not know', async () => {
      assert.equal(await lookupService(), null);
    });

    it('Service.create fills id, uuid and created_at, in updates that merge into the sent object', async () => {
      const fresh = newObject('Service', { host: h.host, binary: 'nova-compute', topic: 'compute', report_count: 0, version: SERVICE_VERSION });
      const [updates, returned] = await c.objectAction(fresh, 'create');
      assert.equal(returned, null);
      assert.equal(typeof updates.id, 'number');
      assert.match(String(updates.uuid), UUID);
      assert.match(String(updates.created_at), NOVA_TIME);
      assert.ok(Array.isArray(updates.obj_what_changed));
      service = mergeUpdates(fresh, updates);
      assert.equal(service['nova_object.changes'], undefined);
      assert.equal(service['nova_object.data'].obj_what_changed, undefined);
      assert.equal(service['nova_object.data'].host, h.host);
      assert.equal(service['nova_object.data'].disabled, false);
    });

    it('Service.get_by_host_and_binary then returns the row as a Service primitive', async () => {
      const found = await lookupService();
      const d = primitiveData(found, 'Service', '1.22');
      const sent = service['nova_object.data'];
      assert.deepEqual(
        [d.id, d.uuid, d.host, d.binary, d.topic, d.report_count, d.version, d.disabled],
        [sent.id, sent.uuid, h.host, 'nova-compute', 'compute', 0, SERVICE_VERSION, false],
      );
    });

    it('Service.save with report_count + 1 sets last_seen_up (the heartbeat)', async () => {
      const changed = withChanges(service, { report_count: 1 });
      const [updates, returned] = await c.objectAction(changed, 'save');
      assert.equal(returned, null);
      assert.match(String(updates.last_seen_up), NOVA_TIME);
      service = mergeUpdates(changed, updates);
      const d = ((await lookupService()) as Primitive)['nova_object.data'];
      assert.equal(d.report_count, 1);
      assert.equal(d.last_seen_up, updates.last_seen_up);
    });

    it('Service.save of a row that does not exist fails with ServiceNotFound', async () => {
      const gone = withChanges({ ...service, 'nova_object.data': { ...service['nova_object.data'], id: 2 ** 31 - 1 } }, { report_count: 2 });
      await rejectsWithNova(c.objectAction(gone, 'save'), 'ServiceNotFound');
    });

    it('ComputeNode.get_by_host_and_nodename fails with ComputeHostNotFound for an unknown node', async () => {
      await rejectsWithNova(lookupNode(), 'ComputeHostNotFound');
    });

    it('ComputeNode.create fills id and mapped 0', async () => {
      const fresh = computeNodeFor(h.host);
      const [updates, returned] = await c.objectAction(fresh, 'create');
      assert.equal(returned, null);
      assert.equal(typeof updates.id, 'number');
      assert.equal(updates.mapped, 0);
      assert.match(String(updates.created_at), NOVA_TIME);
      node = mergeUpdates(fresh, updates);
      assert.equal(node['nova_object.data'].uuid, fresh['nova_object.data'].uuid);
    });

    it('ComputeNode.get_by_host_and_nodename then finds it, and a save of its counters is read back', async () => {
      const found = await lookupNode();
      const d = primitiveData(found, 'ComputeNode', '1.19');
      const sent = node['nova_object.data'];
      assert.deepEqual(
        [d.id, d.uuid, d.host, d.hypervisor_hostname, d.hypervisor_type, d.vcpus, d.memory_mb],
        [sent.id, sent.uuid, h.host, h.host, 'docker', 1, 512],
      );

      const [updates] = await c.objectAction(withChanges(node, { vcpus_used: 1, free_ram_mb: 256, memory_mb_used: 256 }), 'save');
      assert.ok(Array.isArray(updates.obj_what_changed));
      const again = ((await lookupNode()) as Primitive)['nova_object.data'];
      assert.deepEqual([again.vcpus_used, again.free_ram_mb, again.memory_mb_used], [1, 256, 256]);
    });

    it('MigrationList.get_by_filters answers a MigrationList primitive, empty for a host no evacuation left', async () => {
      const filters = { source_compute: h.host, status: ['accepted', 'pre-migrating', 'done'], migration_type: 'evacuation' };
      const list = (await c.objectClassActionVersions('MigrationList', 'get_by_filters', [filters], {})) as Primitive;
      assert.equal(list['nova_object.name'], 'MigrationList');
      assert.deepEqual(list['nova_object.data'].objects, []);
    });

    it('Instance.get_by_uuid of an unknown uuid fails with InstanceNotFound', async () => {
      await rejectsWithNova(c.objectClassActionVersions('Instance', 'get_by_uuid', [randomUUID()], {}), 'InstanceNotFound');
    });

    it('Instance.create fills id and created_at; get_by_uuid then returns it at version 2.7', async () => {
      const fresh = newObject('Instance', {
        uuid: randomUUID(),
        host: h.host,
        node: h.host,
        vm_state: 'building',
        task_state: 'scheduling',
        power_state: 0,
        project_id: 'berth-conformance',
        user_id: 'berth-conformance',
        display_name: 'conformance',
      });
      instances.push(fresh);
      const [updates, returned] = await c.objectAction(fresh, 'create');
      assert.equal(returned, null);
      assert.equal(typeof updates.id, 'number');
      assert.match(String(updates.created_at), NOVA_TIME);
      instance = mergeUpdates(fresh, updates);
      const found = await c.objectClassActionVersions('Instance', 'get_by_uuid', [instance['nova_object.data'].uuid], {});
      const d = primitiveData(found, 'Instance', '2.7');
      assert.deepEqual([d.id, d.task_state], [updates.id, 'scheduling']);
    });

    it('Instance.save with expected_task_state saves on a match, and on a mismatch fails with UnexpectedTaskStateError', async () => {
      const uuid = instance['nova_object.data'].uuid;
      const spawning = withChanges(instance, { task_state: 'spawning' });
      await rejectsWithNova(c.objectAction(spawning, 'save', { expected_task_state: ['block_device_mapping'] }), 'UnexpectedTaskStateError', 500);
      const [updates] = await c.objectAction(spawning, 'save', { expected_task_state: ['scheduling'] });
      instance = mergeUpdates(spawning, updates);
      const found = (await c.objectClassActionVersions('Instance', 'get_by_uuid', [uuid], {})) as Primitive;
      assert.equal(found['nova_object.data'].task_state, 'spawning');
    });

    it('a guarded save of an instance being deleted fails with UnexpectedDeletingTaskStateError', async () => {
      const deleting = withChanges(instance, { task_state: 'deleting' });
      instance = mergeUpdates(deleting, (await c.objectAction(deleting, 'save'))[0]);
      const active = withChanges(instance, { vm_state: 'active', task_state: null });
      await rejectsWithNova(c.objectAction(active, 'save', { expected_task_state: ['spawning'] }), 'UnexpectedDeletingTaskStateError', 500);
    });

    it('Instance.destroy removes it: get_by_uuid and a second destroy fail with InstanceNotFound', async () => {
      const [, returned] = await c.objectAction(withChanges(instance, {}), 'destroy');
      assert.equal(returned, null);
      await rejectsWithNova(c.objectClassActionVersions('Instance', 'get_by_uuid', [instance['nova_object.data'].uuid], {}), 'InstanceNotFound');
      await rejectsWithNova(c.objectAction(withChanges(instance, {}), 'destroy'), 'InstanceNotFound');
    });
  });
}
