import type { AgentClient, InstanceSpec } from '../../agent/client/types.js';
import { describeError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { PowerState, type InstanceRow } from '../db/models.js';
import type { Notifier } from '../notify/notifier.js';
import type { Instance } from '../objects/instance.js';
import type { RequestContext } from '../rpc/envelope.js';
import { novaError } from '../rpc/failure.js';
import { discardImage, rotateBackups, runSnapshot } from './snapshots.js';
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
import { Outcome, Resizes } from './resize.js';
import { storedNeutron, type BuildNetworks, type InstancePorts, type StoredNeutron } from './instance-ports.js';
import type { InstanceEvent } from './vif-events.js';

/** The record's spec: what the agent gets, and (nova mode with Neutron) the instance's networking. */
type StoredSpec = InstanceSpec & { neutron?: StoredNeutron };

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
  /** Neutron's ports of instances (nova mode with [neutron]); without it instances are on project networks. */
  ports?: InstancePorts;
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
  /** Resize on this host: see resize.ts. */
  readonly resizes: Resizes;
  constructor(private readonly d: ManagerDeps) {
    this.plane = d.plane ?? new StandaloneControlPlane();
    this.life = new Lifecycle({ store: d.store, plane: this.plane, notifier: d.notifier, log: d.log });
    this.claims = new Claims(d.store, d.host, d.node, d.resources);
    this.reconcile = new Reconciler({ ...d, plane: this.plane, locks: this.locks, life: this.life });
    this.resizes = new Resizes({ ...d, plane: this.plane, claims: this.claims, step: (ctx, uuid, name, effect) => this.powerAction(ctx, uuid, name, effect) });
  }

  /** build_and_run_instance: claim resources, record, spawn through the agent, then `active`. */
  async buildAndRun(ctx: RequestContext, instance: Instance, imageId: string, networks?: BuildNetworks): Promise<void> {
    await this.locks.run(instance.uuid, async () => {
      const record = buildRecord(instance, imageId, ctx, { host: this.d.host, node: this.d.node });
      const neutron = this.d.ports ? storedNeutron(networks, instance.availability_zone) : null;
      if (neutron) record.spec = { ...(record.spec as InstanceSpec), neutron };
      // A repeat of this uuid cannot come in between: this runs under the instance's own lock.
      const existing = await this.d.store.get(instance.uuid);
      const { row, created, failure } = existing
        ? { row: existing, created: false, failure: null }
        : await this.claims.claim(instance.flavor, () => this.d.store.insertBuilding(record));
      if (!created && !(row.vm_state === 'building' && row.task_state === 'spawning')) {
        this.d.log.info({ instance: instance.uuid, vm_state: row.vm_state }, 'build already handled; duplicate ignored');
        return;
      }
      if (created && !failure && !(await this.claimWithPlane(ctx, row))) return;
      if (failure) return this.failBuild({ ctx, row, name: 'create', action: null }, failure);
      await this.spawn(ctx, row);
    });
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
    let plugged: { wait(): Promise<void>; cancel(): void } | null = null;
    try {
      let { neutron, ...spec } = JSON.parse(row.spec) as StoredSpec;
      if (neutron && this.d.ports) {
        if (neutron.auto)
          throw novaError('UnableToAutoAllocateNetwork', 400, 'Unable to automatically allocate a network: this node takes --network NET or --port PORT', {});
        const inst = { uuid: row.uuid, project_id: row.project_id, availability_zone: neutron.availability_zone, security_groups: neutron.security_groups };
        const built = await this.d.ports.allocate(ctx, inst, neutron.requests);
        neutron = { ...neutron, network_info: built.networkInfo };
        spec = { ...spec, vifs: built.vifs };
        await this.d.store.setImage(row, row.image_ref, { ...spec, neutron });
        // Expected before the plug: Neutron may report a port up as soon as its tap appears.
        plugged = this.d.ports.expectPlugged(row.uuid, built.networkInfo);
      }
      const status = await this.d.agent.createInstance(row.uuid, spec);
      await plugged?.wait();
      await this.life.succeed(run, { launched_at: new Date() }, { ip_address: status.ip_address });
      this.d.log.info({ instance: row.uuid, request_id: ctx.request_id, ip: status.ip_address }, 'instance active');
    } catch (err) {
      plugged?.cancel();
      await this.failBuild(run, err);
    }
  }

  /** Releases the Neutron ports of an instance that has them on record. */
  private async releasePorts(row: InstanceRow): Promise<void> {
    const { neutron } = JSON.parse(row.spec) as StoredSpec;
    if (neutron && this.d.ports) await this.d.ports.release(row.uuid, neutron);
  }

  /**
   * external_instance_event (nova's `_process_instance_event`): each event goes to the build
   * waiting for it (network-vif-plugged, -unplugged); network-changed and network-vif-deleted
   * refresh the instance's network_info from Neutron and save it as the info cache again.
   */
  async externalEvents(ctx: RequestContext, events: Array<InstanceEvent & { instance_uuid: string }>): Promise<void> {
    const refresh = new Set<string>();
    // Every waiting build gets its events first: a refresh waits for the build's lock.
    for (const ev of events) {
      const taken = this.d.ports?.deliver(ev.instance_uuid, ev) ?? false;
      this.d.log.info({ instance: ev.instance_uuid, event: ev.name, tag: ev.tag, status: ev.status, awaited: taken }, 'external instance event');
      if (ev.name === 'network-changed' || ev.name === 'network-vif-deleted') refresh.add(ev.instance_uuid);
    }
    for (const uuid of refresh) {
      void this.locks
        .run(uuid, async () => {
          const row = await this.d.store.get(uuid);
          const { neutron, ...spec } = row && !row.deleted ? (JSON.parse(row.spec) as StoredSpec) : {};
          if (!row || !neutron?.network_info || !this.d.ports) return;
          const networkInfo = await this.d.ports.refresh(ctx, row.uuid, neutron);
          await this.d.store.setImage(row, row.image_ref, { ...spec, neutron: { ...neutron, network_info: networkInfo } });
        })
        .catch((err: unknown) => this.d.log.warn({ instance: uuid, err: describeError(err) }, 'could not refresh the network info cache'));
    }
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
      await this.releasePorts(run.row).catch((e) => log.warn({ err: describeError(e) }, 'could not release the ports of a failed build'));
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
        await this.releasePorts(row);
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

  /**
   * rebuild_instance: the same instance (uuid, name, flavor, network, config drive) on a new
   * image; the old container is removed and a new one started from `imageRef`. A stopped
   * instance is stopped again and stays stopped, as nova's rebuild powers it off after a rebuild
   * from vm_state stopped.
   */
  async rebuild(ctx: RequestContext, uuid: string, imageRef: string): Promise<void> {
    await this.powerAction(ctx, uuid, 'rebuild', async (row, run) => {
      const wasStopped = row.vm_state === 'stopped';
      const spec = { ...(JSON.parse(row.spec) as InstanceSpec), image_id: imageRef };
      await this.d.agent.deleteInstance(uuid);
      await this.d.store.setImage(row, imageRef, spec);
      const status = await this.d.agent.createInstance(uuid, spec);
      await this.d.store.update(row, { launched_at: new Date(), ip_address: status.ip_address });
      if (!wasStopped) return;
      await this.d.agent.instanceAction(uuid, { action: 'stop' });
      run.to = { vm_state: 'stopped', power_state: PowerState.SHUTDOWN };
    });
  }

  /**
   * snapshot_instance / backup_instance: the agent freezes the container only while committing,
   * then streams the image into the Glance image the control plane created. The vm_state is
   * unchanged; task_state goes image_snapshot → image_pending_upload → image_uploading → none.
   */
  async snapshot(ctx: RequestContext, uuid: string, imageId: string, backup?: { type: string; rotation: number }): Promise<void> {
    await this.powerAction(
      ctx,
      uuid,
      backup ? 'backup' : 'createImage',
      async (_row, run) => {
        try {
          // nova-api leaves a snapshot at image_snapshot_pending; the compute takes it to
          // image_snapshot (a backup stays at image_backup), as nova's snapshot_instance does.
          if (!backup) await this.plane.saveInstance(ctx, uuid, { task_state: 'image_snapshot' }, 'image_snapshot_pending');
          await runSnapshot(this.d.agent, uuid, imageId, (task) => this.life.progress(run, task));
        } catch (err) {
          await discardImage(this.d.images, imageId, this.d.log);
          throw err;
        }
      },
      { snapshot_image_id: imageId },
    );
    if (backup && this.d.images) {
      const { project_id: owner } = await this.require(uuid);
      const removed = await rotateBackups(this.d.images, { uuid, owner }, backup.type, backup.rotation, this.d.log);
      if (removed.length) this.d.log.info({ instance: uuid, removed }, 'rotated backups');
    }
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
