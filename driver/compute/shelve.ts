import type { AgentClient, InstanceSpec } from '../../agent/client/types.js';
import { describeError } from '../../common/errors.js';
import { timeStage } from '../../common/stages.js';
import type { KeyedMutex } from '../../common/keyed-mutex.js';
import type { Logger } from '../../common/log.js';
import type { ImageService } from '../../glance-bridge/client/types.js';
import { PowerState, type InstanceRow } from '../db/models.js';
import type { NovaExtras } from '../notify/payload.js';
import type { Instance, InstanceArg } from '../objects/instance.js';
import type { RequestContext } from '../rpc/envelope.js';
import { novaError } from '../rpc/failure.js';
import { buildRecord } from './build-record.js';
import type { Claims } from './claims.js';
import type { ControlPlane } from './control-plane.js';
import type { Action } from './image-actions.js';
import type { Lifecycle } from './lifecycle.js';
import { Outcome } from './resize.js';
import { discardImage, runSnapshot } from './snapshots.js';
import type { Plugged, SpawnNetworks } from './spawn-networks.js';
import { canStart } from './states.js';
import type { InstanceStore } from './store.js';
import { attachedTo, refuseMoveWithVolumes, volumesOnHost, type LocalVolumeSource } from './local-volumes.js';

/** The system_metadata keys a shelve sets and an unshelve removes (nova's compute/utils.py). */
export const SHELVED_KEYS = ['shelved_at', 'shelved_image_id', 'shelved_host'] as const;
type Shelved = Partial<Record<(typeof SHELVED_KEYS)[number], string>>;
const UNSHELVED: Record<(typeof SHELVED_KEYS)[number], null> = { shelved_at: null, shelved_image_id: null, shelved_host: null };

/** A snapshot's task states as a shelve reports them (nova's shelving_state_map). */
const SHELVING_TASK = { image_pending_upload: 'shelving_image_pending_upload', image_uploading: 'shelving_image_uploading' } as const;

export interface ShelveDeps {
  host: string;
  node: string;
  store: InstanceStore;
  agent: AgentClient;
  plane: ControlPlane;
  claims: Claims;
  life: Lifecycle;
  net: SpawnNetworks;
  /** The image service holding the shelved snapshots; without it they are not deleted after an unshelve. */
  images?: ImageService;
  /** The manager's per-instance lock. */
  locks: KeyedMutex;
  /** The manager's guarded, recorded action. */
  action: Action;
  /** nova's shelved_offload_time: 0 offloads at once, -1 never, N seconds after the shelve (pollShelved). */
  offloadTime: number;
  /** The agent's local volumes: an instance with one attached is not offloaded (the volume cannot follow it). */
  volumes?: LocalVolumeSource;
  log: Logger;
}

/** The instance's system_metadata as this node keeps it (in the record's nova extras). */
function sysmetaOf(row: InstanceRow): Record<string, string> {
  return (JSON.parse(row.nova) as NovaExtras).system_metadata ?? {};
}

/** The record's nova extras with `changes` applied to its system_metadata (null removes a key). */
export function withSysmeta(row: InstanceRow, changes: Record<string, string | null>): string {
  const extras = JSON.parse(row.nova) as NovaExtras;
  const sm: Record<string, string> = { ...(extras.system_metadata ?? {}) };
  for (const [k, v] of Object.entries(changes)) {
    if (v === null) delete sm[k];
    else sm[k] = v;
  }
  return JSON.stringify({ ...extras, system_metadata: sm });
}

/** The shelve keys of a nova Instance primitive's system_metadata, when it carries them. */
function shelvedOfPrimitive(primitive: unknown): Shelved {
  const data = (primitive as { 'nova_object.data'?: { system_metadata?: unknown } })['nova_object.data'];
  const sm = data?.system_metadata;
  if (typeof sm !== 'object' || sm === null) return {};
  const out: Shelved = {};
  for (const k of SHELVED_KEYS) {
    const v = (sm as Record<string, unknown>)[k];
    if (typeof v === 'string') out[k] = v;
  }
  return out;
}

/**
 * Shelve, shelve offload and unshelve (nova's shelve_instance, shelve_offload_instance,
 * unshelve_instance, and start_instance of a shelved instance). A shelve powers the container
 * off and snapshots it into the image the caller created (nova-api makes `<name>-shelved`),
 * recording shelved_at, shelved_image_id and shelved_host in system_metadata; an offload removes
 * the container, releases its claim (and the Placement allocations), and leaves the instance on no
 * host; an unshelve claims the flavor on the node it arrives at, boots the snapshot there and
 * deletes the snapshot. Each step is a row of the transition table.
 */
export class Shelves {
  constructor(private readonly d: ShelveDeps) {}

  /** shelve_instance: power off, snapshot into `imageId`, `shelved`; then the offload when shelved_offload_time is 0. */
  async shelve(ctx: RequestContext, uuid: string, imageId: string): Promise<void> {
    const offload = this.d.offloadTime === 0;
    await this.d.action(ctx, uuid, 'shelve', async (row, run) => {
      try {
        // Refused before anything changes when the offload follows: the instance keeps its state, with a fault.
        if (offload) await refuseMoveWithVolumes(this.d.volumes, uuid, 'shelve_offload');
        // nova powers a paused guest off without a clean shutdown; the agent stops only a thawed container.
        if (row.power_state === PowerState.PAUSED || row.power_state === PowerState.SUSPENDED) await this.d.agent.instanceAction(uuid, { action: 'unpause' });
        await this.stage('shelve', 'stop', uuid, () => this.d.agent.instanceAction(uuid, { action: 'stop' }));
        await this.stage('shelve', 'snapshot', uuid, () => runSnapshot(this.d.agent, uuid, imageId, (task) => this.d.life.progress(run, SHELVING_TASK[task])));
      } catch (err) {
        await discardImage(this.d.images, imageId, this.d.log);
        throw err;
      }
      const shelved = { shelved_at: new Date().toISOString(), shelved_image_id: imageId, shelved_host: this.d.host };
      // With an offload to follow, nova saves `shelved` with task shelving_offloading.
      run.to = { vm_state: 'shelved', power_state: PowerState.SHUTDOWN, ...(offload ? { task_state: 'shelving_offloading' as const } : {}) };
      return new Outcome({ system_metadata: shelved }, { nova: withSysmeta(row, shelved) });
    });
    if (offload) await this.offload(ctx, uuid);
  }

  /**
   * shelve_offload_instance: the container removed (its network unplugged; Neutron ports are kept
   * for the unshelve, as nova keeps them), the Placement allocations deleted before the state is
   * saved, then host and node cleared with the authority. The record keeps the node it left, for
   * listing; a `shelved_offloaded` record claims nothing (countsTowardUsage).
   */
  async offload(ctx: RequestContext, uuid: string): Promise<void> {
    await this.d.action(ctx, uuid, 'shelve_offload', async () => {
      // The volumes stay on this host: refused before anything changes (the instance stays shelved here, with a fault).
      await refuseMoveWithVolumes(this.d.volumes, uuid, 'shelve_offload');
      await this.stage('shelve_offload', 'delete', uuid, () => this.d.agent.deleteInstance(uuid));
      await this.stage('shelve_offload', 'release', uuid, () => this.d.plane.releaseAllocations(ctx, uuid));
    });
    await this.stage('shelve_offload', 'save', uuid, () => this.d.plane.saveInstance(ctx, uuid, { host: null, node: null, launched_on: null }, null));
  }

  /**
   * unshelve_instance, on the node the scheduler chose: the record takes this node (a node that
   * never had the instance makes one from nova's instance), the flavor is claimed here, the
   * container boots from the shelved snapshot (`image`, or the shelved_image_id on record) with
   * the instance's networks, and the snapshot is deleted. A failure leaves the instance
   * shelved_offloaded on no host with a fault, its allocations removed and the snapshot kept.
   */
  async unshelve(ctx: RequestContext, arg: InstanceArg, image: { id: string } | null): Promise<void> {
    const uuid = arg.uuid;
    await this.d.locks.run(uuid, async () => {
      const existing = await this.d.store.get(uuid);
      const row = existing && !existing.deleted ? existing : await this.adopt(ctx, arg);
      if (!canStart('unshelve', row.vm_state, row.task_state)) {
        throw novaError('InstanceInvalidState', 400, `Instance ${uuid} in vm_state ${row.vm_state} (task_state ${row.task_state ?? 'None'}) cannot unshelve.`, {
          instance_uuid: uuid,
          attr: 'vm_state',
          state: row.vm_state,
          method: 'unshelve',
        });
      }
      const imageId = image?.id ?? sysmetaOf(row).shelved_image_id ?? shelvedOfPrimitive(arg.primitive).shelved_image_id;
      await this.d.store.update(row, { host: this.d.host, node: this.d.node });
      const run = await this.d.life.begin(ctx, row, 'unshelve');
      let plugged: Plugged | null = null;
      let status: Awaited<ReturnType<AgentClient['createInstance']>>;
      try {
        if (!imageId)
          throw novaError('UnshelveException', 400, `Error during unshelve instance ${uuid}: no shelved image on record`, {
            instance_id: uuid,
            reason: 'no shelved image on record',
          });
        await this.stage('unshelve', 'claim', uuid, () => this.d.claims.heldClaim(JSON.parse(row.flavor) as Instance['flavor']));
        // nova's instance_claim puts the instance on this host with the authority.
        await this.stage('unshelve', 'save', uuid, () =>
          this.d.plane.saveInstance(ctx, uuid, { host: this.d.host, node: this.d.node, launched_on: this.d.host }),
        );
        const prepared = await this.stage('unshelve', 'networks', uuid, () => this.d.net.prepare(ctx, row));
        plugged = prepared.plugged;
        status = await this.stage('unshelve', 'create', uuid, () => this.d.agent.createInstance(uuid, { ...prepared.spec, image_id: imageId }));
        await plugged?.wait();
      } catch (err) {
        plugged?.cancel();
        await this.undo(ctx, uuid);
        await this.d.life.fail(run, err);
        await this.d.plane
          .saveInstance(ctx, uuid, { host: null, node: null, launched_on: null })
          .catch((e: unknown) => this.d.log.warn({ instance: uuid, err: describeError(e) }, 'could not clear the host of a failed unshelve'));
        throw err;
      }
      // The container runs the snapshot's image from now on (a later recreate by the agent needs it).
      const spec = { ...(JSON.parse(row.spec) as InstanceSpec), image_id: imageId };
      await this.stage('unshelve', 'delete_snapshot', uuid, () => this.deleteSnapshot(uuid, imageId));
      await this.d.life.succeed(
        run,
        { launched_at: new Date(), system_metadata: UNSHELVED },
        { ip_address: status.ip_address, nova: withSysmeta(row, UNSHELVED), spec: JSON.stringify(spec) },
      );
      this.d.log.info({ instance: uuid, image: imageId, ip: status.ip_address }, 'instance unshelved');
    });
  }

  /**
   * start_instance: of a shelved instance still on this host (nova's conductor unshelves one
   * that was not offloaded this way), the container started and the shelved snapshot deleted;
   * of any other, a plain power-on.
   */
  async start(ctx: RequestContext, uuid: string): Promise<void> {
    const row = await this.d.store.get(uuid);
    if (row?.vm_state !== 'shelved') {
      await this.d.action(ctx, uuid, 'start', () => this.d.agent.instanceAction(uuid, { action: 'start' }));
      return;
    }
    await this.d.action(ctx, uuid, 'start_shelved', async (current) => {
      await this.d.agent.instanceAction(uuid, { action: 'start' });
      const snapshot = sysmetaOf(current).shelved_image_id;
      if (snapshot) await this.deleteSnapshot(uuid, snapshot);
      return new Outcome({ system_metadata: UNSHELVED }, { nova: withSysmeta(current, UNSHELVED) });
    });
  }

  /**
   * nova's _poll_shelved_instances: instances shelved on this host longer than
   * shelved_offload_time ago, with no task, are offloaded. Returns the offloaded uuids. One with
   * local volumes attached stays shelved on this host (with its volumes), and is not tried again
   * and again: an offload would be refused.
   */
  async pollShelved(now = Date.now()): Promise<string[]> {
    if (this.d.offloadTime <= 0) return [];
    const due = (await this.d.store.listActive(this.d.host)).filter((r) => {
      const at = Date.parse(sysmetaOf(r).shelved_at ?? '');
      return r.vm_state === 'shelved' && r.task_state === null && Number.isFinite(at) && at + this.d.offloadTime * 1000 <= now;
    });
    const done: string[] = [];
    // Unknown (the agent did not answer): each offload asks again, and is refused if it must be.
    const volumes = due.length ? await volumesOnHost(this.d.volumes).catch(() => null) : [];
    for (const row of due) {
      const kept = volumes ? attachedTo(volumes, row.uuid) : [];
      if (kept.length) {
        this.d.log.info({ instance: row.uuid, volumes: kept.map((v) => v.id) }, 'shelved instance not offloaded: local volumes are attached to it');
        continue;
      }
      const ctx: RequestContext = { request_id: `req-shelved-poll-${row.uuid}` };
      try {
        await this.d.plane.saveInstance(ctx, row.uuid, { task_state: 'shelving_offloading' }, null);
        await this.offload(ctx, row.uuid);
        done.push(row.uuid);
      } catch (err) {
        this.d.log.warn({ instance: row.uuid, err: describeError(err) }, 'could not offload a shelved instance');
      }
    }
    return done;
  }

  private stage<T>(op: string, stage: string, uuid: string, fn: () => Promise<T>): Promise<T> {
    return timeStage(op, stage, uuid, fn, this.d.log);
  }

  /** A record for an instance unshelved onto a node that never had it, made from nova's instance. */
  private async adopt(ctx: RequestContext, arg: InstanceArg): Promise<InstanceRow> {
    const instance = arg.decode();
    const record = buildRecord(instance, instance.image_ref, ctx, { host: this.d.host, node: this.d.node });
    const neutron = this.d.net.adoptedRecordOf(instance);
    if (neutron) record.spec = { ...(record.spec as InstanceSpec), neutron };
    const { row } = await this.d.store.insertBuilding(record);
    const shelved = shelvedOfPrimitive(arg.primitive);
    await this.d.store.update(row, {
      vm_state: 'shelved_offloaded',
      task_state: 'unshelving',
      power_state: PowerState.SHUTDOWN,
      nova: withSysmeta(row, shelved),
    });
    return row;
  }

  /** What a failed unshelve undoes: no container left, no allocations held (nova's delete_allocation_for_instance, force). */
  private async undo(ctx: RequestContext, uuid: string): Promise<void> {
    await this.d.agent
      .deleteInstance(uuid)
      .catch((e: unknown) => this.d.log.warn({ instance: uuid, err: describeError(e) }, 'clean-up after a failed unshelve failed'));
    await this.d.plane
      .releaseAllocations(ctx, uuid)
      .catch((e: unknown) => this.d.log.warn({ instance: uuid, err: describeError(e) }, 'could not remove the allocations of a failed unshelve'));
  }

  /** nova's _delete_snapshot_of_shelved_instance: a failure is logged, never fatal. */
  private async deleteSnapshot(uuid: string, imageId: string): Promise<void> {
    if (!this.d.images) return;
    try {
      await this.d.images.deleteImage(imageId);
    } catch (err) {
      this.d.log.warn({ instance: uuid, image: imageId, err: describeError(err) }, 'could not delete the snapshot of a shelved instance');
    }
  }
}
