import type { AgentClient, InstanceSpec, InstanceStatus } from '../../agent/client/types.js';
import { BerthError, describeError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { InstanceRow } from '../db/models.js';
import type { Notifier } from '../notify/notifier.js';
import type { FaultInfo, NovaExtras } from '../notify/payload.js';
import type { Instance } from '../objects/instance.js';
import type { RequestContext } from '../rpc/envelope.js';
import { novaError, RpcFailure } from '../rpc/failure.js';
import { rotateBackups, runSnapshot } from './snapshots.js';
import type { ImageService } from '../../glance-bridge/client/types.js';
import { capacity, checkClaim, claimOf, sumUsage, type HostResources, type Usage } from './resources.js';
import { KeyedMutex } from '../../common/keyed-mutex.js';
import { canStart, TRANSITIONS, type InstanceActionName } from './states.js';
import { countsTowardUsage, type InstanceStore } from './store.js';
import { PowerState } from '../db/models.js';
import { StandaloneControlPlane, type ControlPlane, type InstanceSave, type ExpectedTask, type NodeUsage } from './control-plane.js';
import { RemoteFailure } from '../rpc/caller.js';

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
  log: Logger;
}

/** The authority's guard refused a save: the instance is being deleted or changed elsewhere. */
const isGuardFailure = (err: unknown): boolean => err instanceof RemoteFailure
  && ['UnexpectedTaskStateError', 'UnexpectedDeletingTaskStateError', 'InstanceNotFound'].includes(err.failureClass);

/** Nova exception names for the agent's error codes, so a fault reads as nova's would. */
const FAULT_NAMES: Record<string, [string, number]> = {
  IMAGE_NOT_FOUND: ['ImageNotFound', 404],
  IMAGE_FETCH_FAILED: ['ImageUnacceptable', 400],
  SERVICE_UNREACHABLE: ['ComputeServiceUnavailable', 503],
  SERVICE_TIMEOUT: ['ComputeServiceUnavailable', 503],
  RUNTIME_UNAVAILABLE: ['HypervisorUnavailable', 503],
};

function faultOf(err: unknown): FaultInfo & { code: number } {
  if (err instanceof RpcFailure) return { exception: err.className, message: err.message, code: Number(err.kwargs.code ?? 500) };
  if (err instanceof BerthError) {
    const [name, code] = FAULT_NAMES[err.code] ?? ['NovaException', err.status >= 400 ? err.status : 500];
    return { exception: name, message: err.message, code };
  }
  return { exception: 'NovaException', message: describeError(err), code: 500 };
}

/**
 * The compute manager: runs the instance lifecycle against the agent, keeps the records true and
 * emits the notifications. Every operation is idempotent for a redelivered message.
 */
export class ComputeManager {
  private readonly locks = new KeyedMutex();
  readonly plane: ControlPlane;
  constructor(private readonly d: ManagerDeps) { this.plane = d.plane ?? new StandaloneControlPlane(); }

  /** Mirrors a change to the authority without failing the caller (used on paths already failing). */
  private async mirror(ctx: RequestContext, uuid: string, changes: InstanceSave, fault?: FaultInfo & { code: number }): Promise<void> {
    try {
      if (fault) await this.plane.addFault(ctx, uuid, { code: fault.code, message: fault.message, exception: fault.exception });
      await this.plane.saveInstance(ctx, uuid, changes);
    } catch (err) {
      this.d.log.warn({ instance: uuid, err: describeError(err) }, 'could not record the change with the control plane');
    }
  }

  private agentSpec(i: Instance, imageId: string, ctx: RequestContext): InstanceSpec {
    const fixed = i.addresses.find((a) => a.version === 4);
    return {
      image_id: imageId,
      flavor: { vcpus: i.flavor.vcpus, memory_mb: i.flavor.memory_mb, root_gb: i.flavor.root_gb, swap: i.flavor.swap, extra_specs: i.flavor.extra_specs },
      name: i.display_name, hostname: i.hostname || `instance-${i.uuid.slice(0, 8)}`,
      project_id: i.project_id, user_id: i.user_id, metadata: i.metadata, user_data: i.user_data, key_data: i.key_data, key_name: i.key_name,
      fixed_ip: fixed?.address ?? null,
      ...(typeof ctx.request_id === 'string' ? { request_id: ctx.request_id } : {}),
    };
  }

  private payload(row: InstanceRow, ctx: RequestContext, fault: FaultInfo | null = null) {
    return {
      row, fault, requestId: (ctx.request_id as string | undefined) ?? null,
      initiatorUser: (ctx.user_id as string | null | undefined) ?? null, initiatorProject: (ctx.project_id as string | null | undefined) ?? null,
    };
  }

  /** build_and_run_instance: claim resources, record, spawn through the agent, then `active`. */
  async buildAndRun(ctx: RequestContext, instance: Instance, imageId: string): Promise<void> {
    await this.locks.run(instance.uuid, async () => {
      const nova: NovaExtras = {
        display_description: null, reservation_id: instance.reservation_id, availability_zone: instance.availability_zone,
        key_name: instance.key_name, metadata: instance.metadata, addresses: instance.addresses,
      };
      let claimFailure: unknown = null;
      const record = {
        uuid: instance.uuid, display_name: instance.display_name, hostname: instance.hostname, project_id: instance.project_id,
        user_id: instance.user_id, image_ref: imageId, flavor: instance.flavor, host: this.d.host, node: this.d.node,
        spec: this.agentSpec(instance, imageId, ctx), nova,
      };
      // A repeat of this uuid cannot come in between: this runs under the instance's own lock.
      const existing = await this.d.store.get(instance.uuid);
      // Check and record under one lock, so concurrent builds cannot both take the last slot.
      const { row, created } = existing ? { row: existing, created: false } : await this.locks.run('\0claims', async () => {
        const claim = claimOf(instance.flavor);
        const used = await this.claimedUsage();
        try { checkClaim(this.d.resources, used.usage, claim); } catch (err) { claimFailure = err; }
        const inserted = await this.d.store.insertBuilding(record);
        // Only this insert moved the version: the usage it read plus this claim is the usage now.
        if (inserted.created && !claimFailure && this.d.store.usageVersion === used.version + 1) {
          this.usageCache = { version: used.version + 1, usage: sumUsage([used.usage, claim]) };
        }
        return inserted;
      });
      if (!created && !(row.vm_state === 'building' && row.task_state === 'spawning')) {
        this.d.log.info({ instance: instance.uuid, vm_state: row.vm_state }, 'build already handled; duplicate ignored');
        return;
      }
      if (created && !claimFailure && !(await this.claimWithPlane(ctx, row))) return;
      if (claimFailure) return this.failBuild(ctx, row, claimFailure, null);
      await this.spawn(ctx, row);
    });
  }

  /**
   * nova's first three build saves: building, then host and node (the claim), then spawning, each
   * under its guard. False when the authority refused (the server was deleted meanwhile): the
   * build stops without a container.
   */
  private async claimWithPlane(ctx: RequestContext, row: InstanceRow): Promise<boolean> {
    const steps: Array<[InstanceSave, ExpectedTask | undefined]> = [
      [{ vm_state: 'building', task_state: null }, ['scheduling', null]],
      [{ host: this.d.host, launched_on: this.d.host, node: this.d.node }, undefined],
      [{ task_state: 'spawning' }, [null]],
    ];
    try {
      for (const [changes, expected] of steps) await this.plane.saveInstance(ctx, row.uuid, changes, expected);
      return true;
    } catch (err) {
      if (!isGuardFailure(err)) { await this.failBuild(ctx, row, err, null); return false; }
      this.d.log.info({ instance: row.uuid, reason: describeError(err) }, 'build abandoned: the control plane refused the claim (deleted meanwhile?)');
      await this.d.store.update(row, { vm_state: 'deleted', task_state: null, deleted: true, deleted_at: new Date() });
      return false;
    }
  }

  /** What the instances of this node claim: all not deleted, except builds that never ran. */
  async usage(): Promise<Usage> {
    const rows = await this.d.store.listActive(this.d.host);
    return sumUsage(rows.filter(countsTowardUsage).map((r) => claimOf(JSON.parse(r.flavor) as Instance['flavor'])));
  }

  /** The usage a claim is checked against, and the store's usage version it holds for. */
  private usageCache: { version: number; usage: Usage } | null = null;

  /**
   * usage(), read again only when a row started or stopped counting since the last read: with a
   * hundred builds arriving together, each would otherwise read every instance of the node while
   * holding the claims lock.
   */
  private async claimedUsage(): Promise<{ version: number; usage: Usage }> {
    const version = this.d.store.usageVersion;
    if (this.usageCache?.version === version) return this.usageCache;
    // A change while reading moves the version on, and the next claim reads again.
    this.usageCache = { version, usage: await this.usage() };
    return this.usageCache;
  }

  /** The ComputeNode counters a control plane publishes. */
  async nodeUsage(): Promise<NodeUsage> {
    const used = await this.usage();
    const rows = await this.d.store.listActive(this.d.host);
    return {
      vcpus_used: used.VCPU, memory_mb_used: used.MEMORY_MB, local_gb_used: used.DISK_GB, running_vms: rows.length,
      current_workload: rows.filter((r) => r.task_state !== null || r.vm_state === 'building').length,
    };
  }

  /** Capacity, usage and free amounts per resource class (what a scheduler needs). */
  async hostCapacity(): Promise<Record<string, unknown>> {
    const used = await this.usage();
    const resources: Record<string, unknown> = {};
    for (const rc of ['VCPU', 'MEMORY_MB', 'DISK_GB'] as const) {
      const inv = this.d.resources[rc];
      resources[rc] = { ...inv, capacity: capacity(inv), used: used[rc], free: capacity(inv) - used[rc] };
    }
    const rows = await this.d.store.listActive(this.d.host);
    return { host: this.d.host, node: this.d.node, hypervisor_type: 'docker', resources, instances: rows.length, updated_at: new Date().toISOString() };
  }

  /** Spawns a recorded building instance. Also finishes builds interrupted by a restart. */
  private async spawn(ctx: RequestContext, row: InstanceRow): Promise<void> {
    const log = this.d.log.child({ instance: row.uuid, request_id: ctx.request_id });
    const action = await this.d.store.startAction(row.uuid, 'create', ctx);
    await this.d.notifier.instance(ctx, 'create', 'start', this.payload(row, ctx));
    try {
      const status = await this.d.agent.createInstance(row.uuid, JSON.parse(row.spec) as InstanceSpec);
      const launchedAt = new Date();
      await this.plane.saveInstance(ctx, row.uuid, { power_state: PowerState.RUNNING, vm_state: 'active', task_state: null, launched_at: launchedAt }, 'spawning');
      await this.d.store.update(row, {
        vm_state: 'active', task_state: null, power_state: PowerState.RUNNING, launched_at: launchedAt, ip_address: status.ip_address,
      });
      await this.d.store.finishAction(action, 'Success');
      await this.d.notifier.instance(ctx, 'create', 'end', this.payload(row, ctx));
      log.info({ ip: status.ip_address }, 'instance active');
    } catch (err) {
      await this.failBuild(ctx, row, err, action);
    }
  }

  /** A build that cannot finish: no container left behind, `error` with a fault, create.error. */
  private async failBuild(ctx: RequestContext, row: InstanceRow, err: unknown, started: Awaited<ReturnType<InstanceStore['startAction']>> | null): Promise<void> {
    const log = this.d.log.child({ instance: row.uuid, request_id: ctx.request_id });
    const fault = faultOf(err);
    log.warn({ fault: fault.exception, reason: fault.message }, 'build failed');
    const action = started ?? await this.d.store.startAction(row.uuid, 'create', ctx);
    if (started) {
      // spawn leaves no partial instance behind.
      await this.d.agent.deleteInstance(row.uuid).catch((e) => log.warn({ err: describeError(e) }, 'clean-up after failed build failed'));
    }
    await this.d.store.addFault(row.uuid, fault.code, fault.message, fault.exception);
    await this.d.store.update(row, { vm_state: 'error', task_state: null, power_state: PowerState.NOSTATE });
    await this.d.store.finishAction(action, 'Error', fault.message);
    if (!isGuardFailure(err)) await this.mirror(ctx, row.uuid, { vm_state: 'error', task_state: null, power_state: PowerState.NOSTATE }, fault);
    await this.d.notifier.instance(ctx, 'create', 'error', this.payload(row, ctx, fault));
  }

  /** terminate_instance: succeeds if the instance is already gone. */
  async terminate(ctx: RequestContext, uuid: string): Promise<void> {
    await this.locks.run(uuid, async () => {
      const row = await this.d.store.get(uuid);
      if (!row) {
        // Not ours on record: make sure no container is left, and close the authority's record.
        await this.d.agent.deleteInstance(uuid);
        if (this.plane.mode !== 'standalone') await this.plane.instanceDeleted(ctx, uuid);
        return;
      }
      if (row.deleted) {
        // A redelivered delete, or a build abandoned for a delete: nova's record may still be open.
        if (this.plane.mode !== 'standalone') await this.plane.instanceDeleted(ctx, uuid);
        return;
      }
      const action = await this.d.store.startAction(uuid, 'delete', ctx);
      await this.d.store.update(row, { task_state: 'deleting' });
      await this.d.notifier.instance(ctx, 'delete', 'start', this.payload(row, ctx));
      try {
        await this.d.agent.deleteInstance(uuid);
      } catch (err) {
        const fault = faultOf(err);
        await this.d.store.addFault(uuid, fault.code, fault.message, fault.exception);
        await this.d.store.update(row, { vm_state: 'error', task_state: null });
        await this.d.store.finishAction(action, 'Error', fault.message);
        await this.mirror(ctx, uuid, { vm_state: 'error', task_state: null }, fault);
        throw novaError('InstanceTerminationFailure', 400, `Failed to terminate instance: ${fault.message}`, { reason: fault.message });
      }
      const now = new Date();
      await this.d.store.update(row, { vm_state: 'deleted', task_state: null, power_state: PowerState.NOSTATE, terminated_at: now, deleted_at: now, deleted: true });
      await this.plane.instanceDeleted(ctx, uuid);
      await this.d.store.finishAction(action, 'Success');
      await this.d.notifier.instance(ctx, 'delete', 'end', this.payload(row, ctx));
    });
  }

  async recordFault(uuid: string, code: number, message: string, exception: string): Promise<void> {
    if (await this.d.store.get(uuid)) await this.d.store.addFault(uuid, code, message, exception);
    await this.plane.addFault({}, uuid, { code, message, exception }).catch(() => undefined);
  }

  /** set_host_enabled: the scheduler's view of whether this node takes new instances. */
  setHostEnabled(enabled: boolean): Promise<'enabled' | 'disabled'> { return this.plane.setHostEnabled(enabled); }

  /** Loads an instance of this host or fails with nova's InstanceNotFound. */
  async require(uuid: string): Promise<InstanceRow> {
    const row = await this.d.store.get(uuid);
    if (!row || row.deleted) throw novaError('InstanceNotFound', 404, `Instance ${uuid} could not be found.`, { instance_id: uuid });
    return row;
  }

  /** A power action (stop, start, reboot, pause, ...) through the transition table. */
  async powerAction(ctx: RequestContext, uuid: string, name: InstanceActionName, run: (row: InstanceRow) => Promise<unknown>, extra: { snapshot_image_id?: string } = {}): Promise<void> {
    await this.locks.run(uuid, async () => {
      const row = await this.require(uuid);
      const t = TRANSITIONS[name];
      if (!canStart(name, row.vm_state, row.task_state)) {
        throw novaError('InstanceInvalidState', 400,
          `Instance ${uuid} in vm_state ${row.vm_state} (task_state ${row.task_state ?? 'None'}) cannot ${name}.`,
          { instance_uuid: uuid, attr: 'vm_state', state: row.vm_state, method: name });
      }
      const action = await this.d.store.startAction(uuid, name, ctx);
      await this.d.store.update(row, { task_state: t.task });
      await this.d.notifier.instance(ctx, t.event, 'start', { ...this.payload(row, ctx), snapshotImageId: extra.snapshot_image_id });
      try {
        await run(row);
        const final = t.to === 'unchanged' ? { task_state: null } : { ...t.to, task_state: null };
        // nova-api set the task state before casting; the last task state seen here is the guard.
        await this.plane.saveInstance(ctx, uuid, final, row.task_state);
        await this.d.store.update(row, final);
        await this.d.store.finishAction(action, 'Success');
        await this.d.notifier.instance(ctx, t.event, 'end', { ...this.payload(row, ctx), snapshotImageId: extra.snapshot_image_id });
      } catch (err) {
        const fault = faultOf(err);
        await this.d.store.addFault(uuid, fault.code, fault.message, fault.exception);
        await this.d.store.update(row, { task_state: null });
        await this.d.store.finishAction(action, 'Error', fault.message);
        if (!isGuardFailure(err)) await this.mirror(ctx, uuid, { task_state: null }, fault);
        await this.d.notifier.instance(ctx, t.event, 'error', { ...this.payload(row, ctx, fault), snapshotImageId: extra.snapshot_image_id });
        throw err;
      }
    });
  }

  /**
   * rebuild_instance: the same instance (uuid, name, flavor, network, config drive) on a new
   * image; the old container is removed and a new one started from `imageRef`.
   */
  async rebuild(ctx: RequestContext, uuid: string, imageRef: string): Promise<void> {
    await this.powerAction(ctx, uuid, 'rebuild', async (row) => {
      const spec = { ...(JSON.parse(row.spec) as InstanceSpec), image_id: imageRef };
      await this.d.agent.deleteInstance(uuid);
      await this.d.store.setImage(row, imageRef, spec);
      const status = await this.d.agent.createInstance(uuid, spec);
      await this.d.store.update(row, { launched_at: new Date(), ip_address: status.ip_address });
    });
  }

  /**
   * snapshot_instance / backup_instance: the agent freezes the container only while committing,
   * then streams the image into the Glance image the control plane created. The vm_state is
   * unchanged; task_state goes image_snapshot → image_pending_upload → image_uploading → none.
   */
  async snapshot(ctx: RequestContext, uuid: string, imageId: string, backup?: { type: string; rotation: number }): Promise<void> {
    await this.powerAction(ctx, uuid, backup ? 'backup' : 'createImage', async (row) => {
      try {
        // nova-api leaves a snapshot at image_snapshot_pending; the compute takes it to
        // image_snapshot (a backup stays at image_backup), as nova's snapshot_instance does.
        if (!backup) await this.plane.saveInstance(ctx, uuid, { task_state: 'image_snapshot' }, 'image_snapshot_pending');
        await runSnapshot(this.d.agent, uuid, imageId, async (task) => {
          await this.plane.saveInstance(ctx, uuid, { task_state: task }, row.task_state);
          await this.d.store.update(row, { task_state: task });
        });
      } catch (err) {
        await this.discardImage(imageId);
        throw err;
      }
    }, { snapshot_image_id: imageId });
    if (backup && this.d.images) {
      const { project_id: owner } = await this.require(uuid);
      const removed = await rotateBackups(this.d.images, { uuid, owner }, backup.type, backup.rotation, this.d.log);
      if (removed.length) this.d.log.info({ instance: uuid, removed }, 'rotated backups');
    }
  }

  /**
   * nova's delete_image_on_error: a snapshot that failed leaves no queued image behind, so the
   * caller waiting for it sees the failure instead of waiting forever.
   */
  private async discardImage(imageId: string): Promise<void> {
    const images = this.d.images;
    if (!images) return;
    try {
      const image = await images.getImage(imageId);
      if (image && image.status !== 'active') await images.deleteImage(imageId);
    } catch (err) {
      this.d.log.warn({ image_id: imageId, err: describeError(err) }, 'could not remove the image of a failed snapshot');
    }
  }

  /**
   * The power-state sync (nova's _sync_power_states): compares each record with what the agent
   * reports and corrects drift (a container that stopped, died or vanished) with an
   * instance.update notification. Instances with a task in progress are left alone.
   */
  async syncPowerStates(): Promise<{ corrected: number; unknown: string[] }> {
    let reported: InstanceStatus[];
    try {
      reported = await this.d.agent.listInstances();
    } catch (err) {
      this.d.log.warn({ err: describeError(err) }, 'power-state sync skipped: agent unavailable');
      return { corrected: 0, unknown: [] };
    }
    const byUuid = new Map(reported.map((r) => [r.uuid, r]));
    let corrected = 0;
    const known = new Set<string>();
    for (const row of await this.d.store.listActive(this.d.host)) {
      known.add(row.uuid);
      if (row.task_state !== null || row.vm_state === 'building') continue;
      await this.locks.run(row.uuid, async () => {
        await row.reload();
        if (row.task_state !== null || row.deleted) return;
        if (await this.correctDrift(row, byUuid.get(row.uuid) ?? null)) corrected++;
      });
    }
    const unknown = reported.map((r) => r.uuid).filter((u) => !known.has(u));
    if (unknown.length) this.d.log.warn({ instances: unknown }, 'the agent runs Berth containers this node has no record of');
    return { corrected, unknown };
  }

  private async correctDrift(row: InstanceRow, status: InstanceStatus | null): Promise<boolean> {
    const power = status === null ? PowerState.NOSTATE
      : ({ running: PowerState.RUNNING, paused: PowerState.PAUSED, stopped: PowerState.SHUTDOWN, crashed: PowerState.CRASHED, missing: PowerState.NOSTATE } as const)[status.power_state];
    let vm = row.vm_state;
    if (power === PowerState.NOSTATE && row.vm_state !== 'error') vm = 'error';
    else if ((power === PowerState.SHUTDOWN || power === PowerState.CRASHED) && (row.vm_state === 'active' || row.vm_state === 'paused' || row.vm_state === 'suspended')) vm = 'stopped';
    else if (power === PowerState.RUNNING && row.vm_state === 'stopped') vm = 'active';
    if (vm === row.vm_state && power === row.power_state) return false;
    const oldState = row.vm_state;
    this.d.log.warn({ instance: row.uuid, vm_state: [oldState, vm], power_state: [row.power_state, power] }, 'correcting power-state drift');
    if (power === PowerState.NOSTATE) await this.d.store.addFault(row.uuid, 404, `The container of instance ${row.uuid} vanished from the host.`, 'InstanceNotFound');
    await this.d.store.update(row, { vm_state: vm, power_state: power });
    const ctx: RequestContext = { request_id: `req-sync-${row.uuid}` };
    await this.mirror(ctx, row.uuid, { vm_state: vm, power_state: power });
    await this.d.notifier.instance(ctx, 'update', null, { ...this.payload(row, ctx), stateUpdate: { old_state: oldState, state: vm, old_task_state: null, new_task_state: null } });
    return true;
  }

  /**
   * Removes the containers of instances the control plane deleted without this node (nova deletes
   * a down node's servers by itself), as nova-compute's reaping of running deleted instances does.
   */
  async reapDeletedElsewhere(): Promise<string[]> {
    const rows = (await this.d.store.listActive(this.d.host)).filter((r) => r.vm_state !== 'building');
    const missing = await this.plane.missingInstances(rows.map((r) => r.uuid));
    for (const uuid of missing) {
      await this.locks.run(uuid, async () => {
        const row = await this.d.store.get(uuid);
        if (!row || row.deleted) return;
        this.d.log.warn({ instance: uuid }, 'the control plane deleted this instance while the node was away; removing its container');
        await this.d.agent.deleteInstance(uuid);
        const now = new Date();
        await this.d.store.update(row, { vm_state: 'deleted', task_state: null, power_state: PowerState.NOSTATE, terminated_at: now, deleted_at: now, deleted: true });
      });
    }
    return missing;
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
