import type { AgentClient, InstanceSpec } from '../../agent/client/types.js';
import { describeError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { InstanceRow, MigrationRow } from '../db/models.js';
import type { Notifier } from '../notify/notifier.js';
import type { Instance } from '../objects/instance.js';
import type { RequestContext } from '../rpc/envelope.js';
import { novaError } from '../rpc/failure.js';
import { buildRecord } from './build-record.js';
import type { ImageService } from '../../glance-bridge/client/types.js';
import type { HostResources, Usage } from './resources.js';
import { KeyedMutex } from '../../common/keyed-mutex.js';
import { canStart, type InstanceActionName } from './states.js';
import type { InstanceStore } from './store.js';
import { StandaloneControlPlane, type ControlPlane, type NodeUsage } from './control-plane.js';
import { Claims } from './claims.js';
import { Reconciler } from './reconcile.js';
import { faultOf, Lifecycle, type Run } from './lifecycle.js';
import { Outcome, Resizes, type Step } from './resize.js';
import { Migrations } from './migrate.js';
import type { PeerCompute } from './peers.js';
import type { BuildNetworks, InstancePorts } from './instance-ports.js';
import type { InstanceEvent } from './vif-events.js';
import { SpawnNetworks, type Plugged } from './spawn-networks.js';
import { BuildStages } from './build-stages.js';
import { ImageActions, type Action } from './image-actions.js';
import { Shelves } from './shelve.js';
import { Evacuations } from './evacuate.js';
import { Maintenance } from './maintenance.js';
import { Interfaces } from './interfaces.js';
import type { LocalVolumeSource } from './local-volumes.js';

export interface ManagerDeps {
  host: string;
  node: string;
  store: InstanceStore;
  agent: AgentClient;
  notifier: Notifier;
  resources: HostResources;
  /** The image service, for backup rotation; without it backups are not rotated. */
  images?: ImageService;
  /** The authority for instances (standalone when not given). */
  plane?: ControlPlane;
  /** Other compute nodes, for moves between nodes; without it such moves are refused. */
  peers?: PeerCompute;
  /** Neutron's ports of instances (nova mode with [neutron]); without it instances are on project networks. */
  ports?: InstancePorts;
  /** nova's shelved_offload_time (seconds; 0 offloads at once, -1 never). Default 0, as nova's. */
  shelvedOffloadTime?: number;
  /** Where a maintenance window is kept across restarts; none: in memory only. */
  maintenanceFile?: string;
  /** The agent's local volumes, which moves cannot take along (local-volumes.ts); none: not checked. */
  volumes?: LocalVolumeSource;
  log: Logger;
}

/**
 * The compute manager: runs the instance lifecycle against the agent; the lifecycle module
 * records each transition (store, control plane, instance action, notifications). Every
 * operation is idempotent for a redelivered message.
 */
export class ComputeManager {
  private readonly locks = new KeyedMutex();
  readonly plane: ControlPlane;
  private readonly life: Lifecycle;
  private readonly claims: Claims;
  private readonly reconcile: Reconciler;
  private readonly net: SpawnNetworks;
  /** Where each build's time goes, logged as it ends: see build-stages.ts. */
  private readonly stages: BuildStages;
  /** Resize on this host: see resize.ts. */
  readonly resizes: Resizes;
  /** Rebuild, snapshot and backup: see image-actions.ts. */
  readonly imageActions: ImageActions;
  /** Shelve, offload and unshelve: see shelve.ts. */
  readonly shelves: Shelves;
  /** Resize and cold migration to another node: see migrate.ts. */
  readonly migrations: Migrations;
  /** Evacuation to this node, and the reaping of what was evacuated away from it: see evacuate.ts. */
  readonly evacuations: Evacuations;
  /** host_maintenance_mode: see maintenance.ts. */
  readonly maintenance: Maintenance;
  /** attach_interface and detach_interface: see interfaces.ts. */
  readonly interfaces: Interfaces;
  constructor(private readonly d: ManagerDeps) {
    this.plane = d.plane ?? new StandaloneControlPlane();
    this.life = new Lifecycle({ store: d.store, plane: this.plane, notifier: d.notifier, log: d.log });
    this.claims = new Claims(d.store, d.host, d.node, d.resources);
    this.reconcile = new Reconciler({ ...d, plane: this.plane, locks: this.locks, life: this.life });
    this.stages = new BuildStages(d.log);
    this.net = new SpawnNetworks({ ...d, locks: this.locks, stages: this.stages });
    const action: Action = (ctx, uuid, name, effect, extra) => this.powerAction(ctx, uuid, name, effect, extra);
    this.imageActions = new ImageActions({ ...d, plane: this.plane, life: this.life, action, require: (uuid) => this.require(uuid) });
    const step: Step = (ctx, uuid, name, effect) => this.powerAction(ctx, uuid, name, effect);
    this.resizes = new Resizes({ ...d, plane: this.plane, claims: this.claims, step });
    this.migrations = new Migrations({ ...d, plane: this.plane, claims: this.claims, step, net: this.net });
    this.maintenance = new Maintenance(this.plane, d.host, d.maintenanceFile ?? null, d.log);
    const core = { ...d, plane: this.plane, life: this.life, claims: this.claims, net: this.net, locks: this.locks };
    this.evacuations = new Evacuations({ ...core, maintenance: this.maintenance });
    this.interfaces = new Interfaces({ ...d, action: (ctx, uuid, name, effect) => this.powerAction(ctx, uuid, name, effect) });
    this.shelves = new Shelves({ ...core, action, offloadTime: d.shelvedOffloadTime ?? 0 });
  }

  /** build_and_run_instance: claim resources, record, spawn through the agent, then `active`. */
  async buildAndRun(ctx: RequestContext, instance: Instance, imageId: string, networks?: BuildNetworks): Promise<void> {
    await this.locks.run(instance.uuid, () => this.stages.timed(instance.uuid, () => this.build(ctx, instance, imageId, networks)));
  }

  /** A build under its instance's lock: recorded and claimed (or refused), then spawned. */
  private async build(ctx: RequestContext, instance: Instance, imageId: string, networks?: BuildNetworks): Promise<void> {
    const record = buildRecord(instance, imageId, ctx, { host: this.d.host, node: this.d.node });
    const neutron = this.net.recordOf(networks, instance.availability_zone);
    if (neutron) record.spec = { ...(record.spec as InstanceSpec), neutron };
    // Standalone: VIFs the caller gave (their bridges, MACs, addresses) instead of the project network.
    else if (this.plane.mode === 'standalone' && instance.bridge_vifs.length)
      record.spec = { ...(record.spec as InstanceSpec), vifs: instance.bridge_vifs, fixed_ip: null };
    // A repeat of this uuid cannot come in between: this runs under the instance's own lock.
    const existing = await this.d.store.get(instance.uuid);
    const { row, created, failure } = existing
      ? { row: existing, created: false, failure: null }
      : await this.claims.claim(instance.flavor, () => this.d.store.insertBuilding(record));
    if (!created && !(row.vm_state === 'building' && row.task_state === 'spawning')) {
      this.d.log.info({ instance: instance.uuid, vm_state: row.vm_state }, 'build already handled; duplicate ignored');
      return;
    }
    // A node in maintenance takes no new instance: the build fails as one that does not fit would.
    const refused = created ? (failure ?? this.maintenance.refusal()) : failure;
    if (created && !refused && !(await this.claimWithPlane(ctx, row))) return;
    if (refused) return this.failBuild({ ctx, row, name: 'create', action: null }, refused);
    this.stages.mark(row.uuid, 'claimed');
    await this.spawn(ctx, row);
  }

  /**
   * The control plane's claim of the build (nova's first saves, each under its guard). False when
   * the authority refused (the server was deleted meanwhile): the build stops without a container.
   */
  private async claimWithPlane(ctx: RequestContext, row: InstanceRow): Promise<boolean> {
    try {
      await this.plane.claimBuild(ctx, row.uuid, { host: this.d.host, node: this.d.node });
      return true;
    } catch (err) {
      if (!this.plane.refused(err)) {
        await this.failBuild({ ctx, row, name: 'create', action: null }, err);
        return false;
      }
      await this.life.removed(row, 'claim_refused', { reason: describeError(err) });
      return false;
    }
  }

  /** This node's host name (nova's `host`). */
  get host(): string {
    return this.d.host;
  }

  /** This node's record of a move, if it has one. */
  migration(uuid: string): Promise<MigrationRow | null> {
    return this.d.store.getMigration(uuid);
  }

  /** The node's log, for the endpoint's host-wide methods. */
  get log(): Logger {
    return this.d.log;
  }

  /** What the instances of this node claim: all not deleted, except builds that never ran. */
  usage(): Promise<Usage> {
    return this.claims.usage();
  }
  /** The ComputeNode counters a control plane publishes. */
  nodeUsage(): Promise<NodeUsage> {
    return this.claims.nodeUsage();
  }
  /** Capacity, usage and free amounts per resource class (what a scheduler needs). */
  hostCapacity(): Promise<Record<string, unknown>> {
    return this.claims.hostCapacity();
  }

  /** Spawns a recorded building instance. Also finishes builds interrupted by a restart. */
  private async spawn(ctx: RequestContext, row: InstanceRow): Promise<void> {
    const run = await this.life.begin(ctx, row, 'create');
    let plugged: Plugged | null = null;
    try {
      const prepared = await this.net.prepare(ctx, row);
      plugged = prepared.plugged;
      const status = await this.d.agent.createInstance(row.uuid, prepared.spec);
      this.stages.mark(row.uuid, 'container_ready');
      await plugged?.wait();
      await this.life.succeed(run, { launched_at: new Date() }, { ip_address: status.ip_address });
      this.stages.mark(row.uuid, 'active');
      this.stages.end(row.uuid, 'active');
      this.d.log.info({ instance: row.uuid, request_id: ctx.request_id, ip: status.ip_address }, 'instance active');
    } catch (err) {
      await plugged?.cancel();
      await this.failBuild(run, err);
      this.stages.end(row.uuid, 'error');
    }
  }

  /** external_instance_event: see spawn-networks.ts. */
  async externalEvents(ctx: RequestContext, events: Array<InstanceEvent & { instance_uuid: string }>): Promise<void> {
    this.net.events(ctx, events);
  }

  /** A build that cannot finish: no container left behind, `error` with a fault, create.error. */
  private async failBuild(run: Run, err: unknown): Promise<void> {
    const log = this.d.log.child({ instance: run.row.uuid, request_id: run.ctx.request_id });
    const fault = faultOf(err);
    log.warn({ fault: fault.exception, reason: fault.message }, 'build failed');
    if (run.action) {
      // spawn leaves no partial instance behind.
      await this.d.agent.deleteInstance(run.row.uuid).catch((e) => log.warn({ err: describeError(e) }, 'clean-up after failed build failed'));
      // nova's _cleanup_allocated_networks: a failed build keeps no port.
      await this.net.release(run.row).catch((e) => log.warn({ err: describeError(e) }, 'could not release the ports of a failed build'));
    }
    await this.life.fail(run, err);
  }

  /** terminate_instance: succeeds if the instance is already gone. */
  async terminate(ctx: RequestContext, uuid: string): Promise<void> {
    await this.locks.run(uuid, async () => {
      const row = await this.d.store.get(uuid);
      if (!row) {
        // Not ours on record: make sure no container is left, and close the authority's record.
        await this.d.agent.deleteInstance(uuid);
        await this.plane.instanceDeleted(ctx, uuid);
        return;
      }
      if (row.deleted) {
        // A redelivered delete, or a build abandoned for a delete: nova's record may still be open.
        await this.plane.instanceDeleted(ctx, uuid);
        return;
      }
      const run = await this.life.begin(ctx, row, 'delete');
      try {
        await this.d.agent.deleteInstance(uuid);
        await this.net.release(row);
      } catch (err) {
        const fault = await this.life.fail(run, err);
        throw novaError('InstanceTerminationFailure', 400, `Failed to terminate instance: ${fault.message}`, { reason: fault.message });
      }
      const now = new Date();
      await this.life.succeed(run, { terminated_at: now }, { deleted_at: now, deleted: true });
    });
  }

  /** A fault without a transition (a cast the node cannot perform), on the record and with the authority. */
  async recordFault(uuid: string, code: number, message: string, exception: string): Promise<void> {
    if (await this.d.store.get(uuid)) await this.d.store.addFault(uuid, code, message, exception);
    await this.plane.addFault({}, uuid, { code, message, exception }).catch(() => undefined);
  }

  /** set_host_enabled: the scheduler's view of whether this node takes new instances. */
  setHostEnabled(enabled: boolean): Promise<'enabled' | 'disabled'> {
    return this.plane.setHostEnabled(enabled);
  }

  /** Loads an instance of this host or fails with nova's InstanceNotFound. */
  async require(uuid: string): Promise<InstanceRow> {
    const row = await this.d.store.get(uuid);
    if (!row || row.deleted) throw novaError('InstanceNotFound', 404, `Instance ${uuid} could not be found.`, { instance_id: uuid });
    return row;
  }

  /** An action on a running instance (stop, start, reboot, pause, ...): guarded and recorded by the transition table. */
  async powerAction(
    ctx: RequestContext,
    uuid: string,
    name: InstanceActionName,
    /** What it returns, when an Outcome, adds to what success records. */
    effect: (row: InstanceRow, run: Run) => Promise<unknown>,
    extra: { snapshot_image_id?: string } = {},
  ): Promise<void> {
    await this.locks.run(uuid, async () => {
      const row = await this.require(uuid);
      if (!canStart(name, row.vm_state, row.task_state)) {
        throw novaError('InstanceInvalidState', 400, `Instance ${uuid} in vm_state ${row.vm_state} (task_state ${row.task_state ?? 'None'}) cannot ${name}.`, {
          instance_uuid: uuid,
          attr: 'vm_state',
          state: row.vm_state,
          method: name,
        });
      }
      const run = await this.life.begin(ctx, row, name, extra.snapshot_image_id === undefined ? undefined : { snapshotImageId: extra.snapshot_image_id });
      try {
        const outcome = await effect(row, run);
        if (outcome instanceof Outcome) await this.life.succeed(run, outcome.stamps, outcome.local);
        else await this.life.succeed(run);
      } catch (err) {
        await this.life.fail(run, err);
        throw err;
      }
    });
  }

  /** The power-state sync (nova's _sync_power_states): see reconcile.ts. */
  syncPowerStates(): Promise<{ corrected: number; unknown: string[] }> {
    return this.reconcile.syncPowerStates();
  }
  /** Removes the containers of instances the control plane deleted without this node: see reconcile.ts. */
  reapDeletedElsewhere(): Promise<string[]> {
    return this.reconcile.reapDeletedElsewhere();
  }

  /**
   * At start-up: finish builds a crash interrupted (the agent's create is idempotent), and clear
   * stale task states, so no instance stays stuck in `building` or mid-task.
   */
  async recoverInterrupted(): Promise<number> {
    let n = 0;
    for (const row of await this.d.store.listActive(this.d.host)) {
      if (row.vm_state === 'building') {
        n++;
        this.d.log.info({ instance: row.uuid }, 'finishing a build interrupted by a restart');
        await this.locks.run(row.uuid, async () => {
          // A redelivered build message may have finished it meanwhile.
          await row.reload();
          if (row.vm_state === 'building') await this.spawn({ request_id: `req-recover-${row.uuid}` }, row);
        });
      } else if (row.vm_state === 'shelved_offloaded' && row.task_state === 'spawning') {
        // An unshelve a crash interrupted: no half-made container is kept; the unshelve can be sent again.
        n++;
        await this.d.agent.deleteInstance(row.uuid).catch((err) => this.d.log.warn({ err: describeError(err) }, 'clean-up of an interrupted unshelve failed'));
        await this.d.store.update(row, { task_state: null });
      } else if (row.task_state === 'deleting') {
        n++;
        await this.terminate({}, row.uuid).catch((err) => this.d.log.warn({ err: describeError(err) }, 'interrupted delete failed'));
      } else if (row.task_state !== null) {
        n++;
        await this.d.store.update(row, { task_state: null });
      }
    }
    return n;
  }
}
