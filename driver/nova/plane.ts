import { randomUUID } from 'node:crypto';
import { describeError, hasErrorCode } from '../../common/errors.js';
import { driverError } from '../errors.js';
import { backoffDelay } from '../../common/backoff.js';
import type { Logger } from '../../common/log.js';
import type { ControlPlane, ExpectedTask, FaultRecord, InstanceSave, MoveRecord, NodeUsage } from '../compute/control-plane.js';
import { every } from '../../common/periodic.js';
import type { HostResources } from '../compute/resources.js';
import { RemoteFailure } from '../rpc/caller.js';
import type { RequestContext } from '../rpc/envelope.js';
import type { ConductorClient } from './conductor.js';
import { emptyPciPools, isPrimitive, mergeUpdates, newObject, novaTime, withChanges, type Primitive } from './objects.js';
import { DISABLED_TRAIT, type PlacementClient } from './placement.js';

export interface NovaPlaneOptions {
  host: string;
  node: string;
  serviceVersion: number;
  reportIntervalSeconds: number;
  updateIntervalSeconds: number;
  hostIp: string;
  resources: HostResources;
  usage: () => Promise<NodeUsage>;
  conductor: ConductorClient;
  placement: PlacementClient;
  log: Logger;
}

/** Traits every Berth provider carries besides COMPUTE_NODE: what the node can boot. */
export const CAPABILITY_TRAITS = ['COMPUTE_NODE', 'COMPUTE_IMAGE_TYPE_RAW', 'CUSTOM_BERTH_DOCKER'];
const HYPERVISOR_TYPE = 'docker';
/** Instance objects kept to echo back on save; more than a node ever runs, so nothing live is evicted. */
const MAX_REMEMBERED = 10_000;

const remoteIs = (err: unknown, ...classes: string[]): boolean => err instanceof RemoteFailure && classes.includes(err.failureClass);

/**
 * A Berth node inside a real Nova: registers its Service and ComputeNode through nova-conductor,
 * keeps its Placement resource provider current, heartbeats, and saves every instance change
 * through the conductor with nova's expected_task_state guards (nova-control-plane.md §5).
 */
export class NovaControlPlane implements ControlPlane {
  readonly mode = 'nova';
  private service: Primitive | null = null;
  private computeNode: Primitive | null = null;
  private readonly instances = new Map<string, Primitive>();
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private registering: Promise<void> | null = null;

  constructor(private readonly o: NovaPlaneOptions) {}

  /** The conductor the plane writes through, for other writers of nova's objects (console authorisations). */
  get conductor(): ConductorClient {
    return this.o.conductor;
  }

  get registered(): boolean {
    return this.service !== null && this.computeNode !== null;
  }
  get providerUuid(): string | null {
    return (this.computeNode?.['nova_object.data'].uuid as string | undefined) ?? null;
  }

  /** Registers, retrying with back-off while the conductor or Placement is away; then reports periodically. */
  async start(): Promise<void> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.register();
        break;
      } catch (err) {
        const waitMs = backoffDelay(attempt, { baseMs: 1000, maxMs: 30_000 });
        this.o.log.warn({ err: describeError(err), retry_in_s: waitMs / 1000 }, 'registration with nova failed; retrying');
        await new Promise((r) => setTimeout(r, waitMs).unref());
      }
    }
    if (this.stopped) return;
    const warn = (what: string) => (err: unknown) => this.o.log.warn({ err: describeError(err) }, `${what} failed; retrying next period`);
    this.timers.push(every(this.o.reportIntervalSeconds, () => this.heartbeat(), warn('service heartbeat')));
    this.timers.push(every(this.o.updateIntervalSeconds, () => this.updateResources(), warn('resource update')));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timers.forEach(clearInterval);
    this.timers = [];
  }

  private async register(): Promise<void> {
    this.registering ??= this.doRegister().finally(() => {
      this.registering = null;
    });
    return this.registering;
  }

  private async doRegister(): Promise<void> {
    const { host, node, conductor } = this.o;
    const found = await conductor.objectClassActionVersions('Service', 'get_by_host_and_binary', [host, 'nova-compute']);
    let service: Primitive;
    if (isPrimitive(found)) {
      service = found;
      if (service['nova_object.data'].version !== this.o.serviceVersion) service = await this.save(service, { version: this.o.serviceVersion });
    } else {
      const fresh = newObject('Service', { host, binary: 'nova-compute', topic: 'compute', report_count: 0, version: this.o.serviceVersion });
      service = mergeUpdates(fresh, (await conductor.objectAction(fresh, 'create'))[0]);
      this.o.log.info({ service_id: service['nova_object.data'].id }, 'registered the nova-compute service');
    }
    this.service = service;

    let cn: unknown = null;
    try {
      cn = await conductor.objectClassActionVersions('ComputeNode', 'get_by_host_and_nodename', [host, node]);
    } catch (err) {
      if (!remoteIs(err, 'ComputeHostNotFound', 'ComputeHostNotFound_Remote')) throw err;
    }
    const fields = await this.nodeFields();
    if (isPrimitive(cn)) {
      this.computeNode = await this.save(cn, fields);
    } else {
      const fresh = newObject('ComputeNode', { uuid: randomUUID(), host, hypervisor_hostname: node, ...fields });
      this.computeNode = mergeUpdates(fresh, (await conductor.objectAction(fresh, 'create'))[0]);
      this.o.log.info({ compute_node: this.providerUuid }, 'registered the compute node');
    }
    const rp = this.providerUuid!;
    await this.o.placement.ensureProvider(rp, node);
    await this.o.placement.setInventory(rp, this.o.resources);
    // As nova's _get_traits: the provider's traits kept (an operator's), the node's own added, disabled as the service is.
    const own = this.service['nova_object.data'].disabled === true ? [...CAPABILITY_TRAITS, DISABLED_TRAIT] : CAPABILITY_TRAITS;
    await this.o.placement.setTraits(rp, [...new Set([...(await this.o.placement.getTraits(rp)).filter((t) => t !== DISABLED_TRAIT), ...own])]);
    this.o.log.info({ resource_provider: rp, service_version: this.o.serviceVersion }, 'node registered with nova and placement');
  }

  private async save(p: Primitive, fields: Record<string, unknown>, kwargs: Record<string, unknown> = {}, ctx?: RequestContext): Promise<Primitive> {
    const changed = withChanges(p, fields);
    const [updates] = await this.o.conductor.objectAction(changed, 'save', kwargs, ctx);
    return mergeUpdates(changed, updates);
  }

  private async nodeFields(): Promise<Record<string, unknown>> {
    const r = this.o.resources;
    const u = await this.o.usage();
    const memUsed = u.memory_mb_used + r.MEMORY_MB.reserved;
    const diskUsed = u.local_gb_used + r.DISK_GB.reserved;
    return {
      vcpus: r.VCPU.total,
      memory_mb: r.MEMORY_MB.total,
      local_gb: r.DISK_GB.total,
      vcpus_used: u.vcpus_used,
      memory_mb_used: memUsed,
      local_gb_used: diskUsed,
      free_ram_mb: r.MEMORY_MB.total - memUsed,
      free_disk_gb: r.DISK_GB.total - diskUsed,
      disk_available_least: r.DISK_GB.total - diskUsed,
      hypervisor_type: HYPERVISOR_TYPE,
      hypervisor_version: 1,
      current_workload: u.current_workload,
      running_vms: u.running_vms,
      cpu_info: '{}',
      metrics: '[]',
      stats: {},
      host_ip: this.o.hostIp,
      numa_topology: null,
      supported_hv_specs: [],
      pci_device_pools: emptyPciPools(),
      cpu_allocation_ratio: r.VCPU.allocation_ratio,
      ram_allocation_ratio: r.MEMORY_MB.allocation_ratio,
      disk_allocation_ratio: r.DISK_GB.allocation_ratio,
    };
  }

  /** Service.save with report_count + 1: nova's liveness signal. A vanished row is registered again. */
  async heartbeat(): Promise<void> {
    if (!this.service) return;
    try {
      const count = Number(this.service['nova_object.data'].report_count ?? 0) + 1;
      this.service = await this.save(this.service, { report_count: count });
    } catch (err) {
      if (remoteIs(err, 'ServiceNotFound')) {
        this.o.log.warn('nova no longer knows this service; registering again');
        this.service = null;
        await this.register();
        return;
      }
      throw err;
    }
  }

  /** Refreshes the ComputeNode counters and the Placement inventory (unchanged inventories cost nothing). */
  async updateResources(): Promise<void> {
    if (!this.computeNode) return;
    const fields = await this.nodeFields();
    const { pci_device_pools: _pools, ...counters } = fields;
    this.computeNode = await this.save(this.computeNode, counters);
    await this.o.placement.setInventory(this.providerUuid!, this.o.resources);
  }

  observe(instance: unknown): void {
    if (!isPrimitive(instance) || instance['nova_object.name'] !== 'Instance') return;
    const uuid = instance['nova_object.data'].uuid;
    if (typeof uuid !== 'string') return;
    this.instances.delete(uuid);
    if (this.instances.size >= MAX_REMEMBERED) this.instances.delete(this.instances.keys().next().value as string);
    const { 'nova_object.changes': _c, ...clean } = instance;
    this.instances.set(uuid, clean);
  }

  /** The instance as last seen; after a restart nova is asked for it. */
  private async instance(uuid: string): Promise<Primitive> {
    const known = this.instances.get(uuid);
    if (known) return known;
    const got = await this.o.conductor.objectClassActionVersions('Instance', 'get_by_uuid', [uuid], {});
    if (!isPrimitive(got)) throw driverError('INSTANCE_NOT_FOUND', `nova has no instance ${uuid}`);
    this.observe(got);
    return this.instances.get(uuid)!;
  }

  async saveInstance(ctx: RequestContext, uuid: string, changes: InstanceSave, expected?: ExpectedTask): Promise<void> {
    const { system_metadata: sysmeta, ...rest } = changes;
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(rest)) if (v !== undefined) fields[k] = v instanceof Date ? novaTime(v) : v;
    let inst = await this.instance(uuid);
    if (sysmeta) {
      // nova saves system_metadata whole (keys left out are deleted): merge into what it has.
      if (typeof inst['nova_object.data'].system_metadata !== 'object' || inst['nova_object.data'].system_metadata === null) inst = await this.reload(uuid);
      const merged = { ...(inst['nova_object.data'].system_metadata as Record<string, string | null>) };
      for (const [k, v] of Object.entries(sysmeta)) {
        if (v === null) delete merged[k];
        else merged[k] = v;
      }
      fields.system_metadata = merged;
    }
    const saved = await this.save(inst, fields, expected === undefined ? {} : { expected_task_state: expected }, ctx);
    this.instances.set(uuid, saved);
  }

  /** The instance read again from nova with its system_metadata (a message may carry it without). */
  private async reload(uuid: string): Promise<Primitive> {
    const got = await this.o.conductor.objectClassActionVersions('Instance', 'get_by_uuid', [uuid], { expected_attrs: ['system_metadata'] });
    if (!isPrimitive(got)) throw driverError('INSTANCE_NOT_FOUND', `nova has no instance ${uuid}`);
    this.observe(got);
    return this.instances.get(uuid)!;
  }

  async claimBuild(ctx: RequestContext, uuid: string, where: { host: string; node: string }): Promise<void> {
    const steps: Array<[InstanceSave, ExpectedTask | undefined]> = [
      [{ vm_state: 'building', task_state: null }, ['scheduling', null]],
      [{ host: where.host, launched_on: where.host, node: where.node }, undefined],
      [{ task_state: 'spawning' }, [null]],
    ];
    for (const [changes, expected] of steps) await this.saveInstance(ctx, uuid, changes, expected);
  }

  refused(err: unknown): boolean {
    return remoteIs(err, 'UnexpectedTaskStateError', 'UnexpectedDeletingTaskStateError', 'InstanceNotFound');
  }

  async addFault(ctx: RequestContext, uuid: string, fault: FaultRecord): Promise<void> {
    const f = newObject('InstanceFault', {
      instance_uuid: uuid,
      code: fault.code,
      message: fault.message.slice(0, 255),
      details: fault.details ?? fault.exception,
      host: this.o.host,
    });
    await this.o.conductor.objectAction(f, 'create', {}, ctx);
  }

  async saveNetworkInfo(ctx: RequestContext, uuid: string, networkInfo: unknown[]): Promise<void> {
    // nova's NetworkModelField travels as the model's JSON text.
    const cache = newObject('InstanceInfoCache', { instance_uuid: uuid, network_info: JSON.stringify(networkInfo) });
    await this.o.conductor.objectAction(cache, 'save', {}, ctx);
  }

  async instanceDeleted(ctx: RequestContext, uuid: string): Promise<void> {
    let inst: Primitive;
    try {
      inst = await this.instance(uuid);
    } catch (err) {
      if (remoteIs(err, 'InstanceNotFound') || hasErrorCode(err, 'INSTANCE_NOT_FOUND')) return;
      throw err;
    }
    const now = new Date();
    inst = await this.save(inst, { vm_state: 'deleted', task_state: null, power_state: 0, terminated_at: novaTime(now) }, {}, ctx);
    await this.o.placement.deleteAllocations(uuid);
    try {
      await this.o.conductor.objectAction(withChanges(inst, {}), 'destroy', {}, ctx);
    } catch (err) {
      if (!remoteIs(err, 'InstanceNotFound', 'ObjectActionError')) throw err;
    }
    this.instances.delete(uuid);
  }

  async saveMigration(ctx: RequestContext, migration: MoveRecord, status: string, fields: Record<string, unknown> = {}): Promise<unknown> {
    if (!isPrimitive(migration.nova)) return null;
    return this.save(migration.nova, { ...fields, status }, {}, ctx);
  }

  async dropMoveAllocations(_ctx: RequestContext, migrationUuid: string): Promise<void> {
    await this.o.placement.deleteAllocations(migrationUuid);
  }

  async revertMoveAllocations(_ctx: RequestContext, migrationUuid: string, instanceUuid: string): Promise<void> {
    if (!(await this.o.placement.moveAllocations(migrationUuid, instanceUuid))) {
      this.o.log.warn({ instance: instanceUuid, migration: migrationUuid }, 'the migration holds no allocations to give back to the instance');
    }
  }

  async releaseAllocations(_ctx: RequestContext, instanceUuid: string): Promise<void> {
    await this.o.placement.deleteAllocations(instanceUuid);
  }

  async evacuationsFrom(host: string): Promise<Array<MoveRecord & { instance_uuid: string }>> {
    const filters = { source_compute: host, status: ['accepted', 'pre-migrating', 'done'], migration_type: 'evacuation' };
    const list = await this.o.conductor.objectClassActionVersions('MigrationList', 'get_by_filters', [filters], {});
    const objects = isPrimitive(list) ? (list['nova_object.data'].objects as unknown[]) : [];
    return (objects ?? [])
      .filter(isPrimitive)
      .map((m) => ({ uuid: String(m['nova_object.data'].uuid), instance_uuid: String(m['nova_object.data'].instance_uuid), nova: m }));
  }

  async dropSourceAllocations(instanceUuid: string): Promise<void> {
    const rp = this.providerUuid;
    if (!rp) throw driverError('NODE_NOT_REGISTERED', 'this node has not registered with nova yet');
    await this.o.placement.removeProviderAllocations(instanceUuid, rp);
  }

  async missingInstances(uuids: string[]): Promise<string[]> {
    const missing: string[] = [];
    for (const uuid of uuids) {
      try {
        await this.o.conductor.objectClassActionVersions('Instance', 'get_by_uuid', [uuid], {});
      } catch (err) {
        if (!remoteIs(err, 'InstanceNotFound')) throw err;
        missing.push(uuid);
        this.instances.delete(uuid);
      }
    }
    return missing;
  }

  async setHostEnabled(enabled: boolean): Promise<'enabled' | 'disabled'> {
    const rp = this.providerUuid;
    if (!rp) throw driverError('NODE_NOT_REGISTERED', 'this node has not registered with nova yet');
    const traits = new Set(await this.o.placement.getTraits(rp));
    if (enabled) traits.delete(DISABLED_TRAIT);
    else traits.add(DISABLED_TRAIT);
    await this.o.placement.setTraits(rp, [...traits]);
    return enabled ? 'enabled' : 'disabled';
  }
}
