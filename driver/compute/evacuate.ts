import { randomUUID } from 'node:crypto';
import type { AgentClient, InstanceSpec } from '../../agent/client/types.js';
import { describeError } from '../../common/errors.js';
import type { KeyedMutex } from '../../common/keyed-mutex.js';
import type { Logger } from '../../common/log.js';
import { PowerState, type InstanceRow, type MigrationRow, type MigrationStatus, type VmState } from '../db/models.js';
import type { Instance } from '../objects/instance.js';
import { field, unwrap } from '../objects/primitive.js';
import type { RequestContext } from '../rpc/envelope.js';
import { novaError } from '../rpc/failure.js';
import { buildRecord } from './build-record.js';
import type { Claims } from './claims.js';
import type { ControlPlane } from './control-plane.js';
import { faultOf, type Lifecycle } from './lifecycle.js';
import type { SpawnNetworks } from './spawn-networks.js';
import { canStart } from './states.js';
import type { InstanceStore } from './store.js';
import type { Maintenance } from './maintenance.js';
import { mirroredOf, sysmetaOfPrimitive, sysmetaOfRow } from './local-volumes.js';

/** An evacuation as rebuild_instance(recreate=True) asks for it. */
export interface EvacuationRequest {
  /** The instance primitive, decoded: where it was (host, node) and what it is. */
  instance: Instance;
  /** image_ref; nova-api sends none for an evacuation (the instance's own image is used). */
  imageRef: string | null;
  /** nova's Migration primitive (type evacuation) nova-api made, or null (a caller that made none). */
  migration: unknown;
  /** on_shared_storage: a container's filesystem is never on shared storage. */
  onSharedStorage: boolean | null;
  /** The instance's nova primitive, for the local volumes its host mirrored into system_metadata. */
  primitive?: unknown;
}

export interface EvacuationDeps {
  host: string;
  node: string;
  store: InstanceStore;
  agent: AgentClient;
  plane: ControlPlane;
  life: Lifecycle;
  claims: Claims;
  net: SpawnNetworks;
  /** The manager's per-instance lock. */
  locks: KeyedMutex;
  /** A node in maintenance takes no instance: its refusal fails the claim. */
  maintenance: Pick<Maintenance, 'refusal'>;
  log: Logger;
}

const VM_STATES: readonly VmState[] = ['active', 'stopped', 'error'];

/** The Migration primitive's uuid, when the caller sent one. */
function migrationUuid(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  const d = unwrap(value, 'Migration', 'migration', [1]);
  return field.optStr(d, 'uuid', 'migration');
}

/**
 * Evacuation (nova's rebuild_instance with recreate=True, and _destroy_evacuated_instances): an
 * instance whose host is down is booted again from its image on this node, with a claim here
 * (nova's rebuild_claim) and a migration of type `evacuation` recording the move; the old host,
 * when it returns, removes its leftover container and completes the migration.
 *
 * Where the record lives: nodes sharing one database (standalone, or nova mode on PostgreSQL) see
 * the instance's record and move it to this node on success; a node with records of its own
 * (nova mode) records the instance from nova's primitive.
 */
export class Evacuations {
  constructor(private readonly d: EvacuationDeps) {}

  async evacuate(ctx: RequestContext, req: EvacuationRequest): Promise<void> {
    const { instance } = req;
    const uuid = instance.uuid;
    if (req.onSharedStorage === true) {
      // nova's answer when the caller's idea of shared storage differs from the driver's.
      throw novaError('InvalidSharedStorage', 400, 'Invalid state of instance files on shared storage', { path: this.d.host, reason: 'containers are local' });
    }
    await this.d.locks.run(uuid, async () => {
      const migUuid = migrationUuid(req.migration) ?? randomUUID();
      const known = await this.d.store.get(uuid);
      const existing = known && !known.deleted ? known : null;
      if (existing?.host === this.d.host) {
        const m = await this.d.store.getMigration(migUuid);
        if (m && m.status !== 'failed') {
          this.d.log.info({ instance: uuid, migration: migUuid }, 'evacuation already handled; duplicate ignored');
          return;
        }
        throw novaError('InstanceExists', 409, `Instance ${uuid} already exists.`, { name: uuid });
      }
      // nova's _check_instance_exists: this host has no guest of it already.
      if (await this.d.agent.getInstance(uuid)) throw novaError('InstanceExists', 409, `Instance ${uuid} already exists.`, { name: uuid });
      const vmState = (existing?.vm_state ?? instance.vm_state) as VmState;
      const taskState = existing ? existing.task_state : null;
      if (!VM_STATES.includes(vmState) || !canStart('evacuate', vmState, taskState)) {
        throw novaError('InstanceInvalidState', 409, `Instance ${uuid} in vm_state ${vmState} cannot be evacuated.`, {
          instance_uuid: uuid,
          attr: 'vm_state',
          state: vmState,
          method: 'evacuate',
        });
      }
      const source = { host: existing?.host ?? instance.host ?? '', node: existing?.node ?? instance.node ?? '' };
      const flavor = existing ? (JSON.parse(existing.flavor) as Instance['flavor']) : instance.flavor;
      const imageRef = req.imageRef || existing?.image_ref || instance.image_ref;
      const record = {
        uuid: migUuid,
        instance_uuid: uuid,
        migration_type: 'evacuation' as const,
        source_compute: source.host,
        dest_compute: this.d.host,
        source_node: source.node,
        dest_node: this.d.node,
        old_flavor: JSON.stringify(flavor),
        new_flavor: JSON.stringify(flavor),
        old_vm_state: vmState,
        nova: req.migration ? JSON.stringify(req.migration) : '',
      };
      let move: MigrationRow;
      try {
        // nova's rebuild_claim: the flavor must fit here; the move holds it until the record moves.
        move = await this.d.claims.moveClaim(flavor, () => {
          const refused = this.d.maintenance.refusal();
          if (refused) throw refused;
          return this.d.store.insertMigration({ ...record, status: 'pre-migrating' });
        });
      } catch (err) {
        // The claim failed: nothing was done to the instance, which keeps its state (nova's InstanceFaultRollback).
        const failed = await this.d.store.insertMigration({ ...record, status: 'failed' });
        await this.saveStatus(ctx, failed, 'failed');
        const fault = faultOf(err);
        if (existing) await this.d.store.addFault(uuid, fault.code, fault.message, fault.exception);
        await this.d.plane.addFault(ctx, uuid, fault).catch(() => undefined);
        // nova's _error_out_instance_on_exception for an InstanceFaultRollback: the task cleared, the vm_state kept.
        await this.d.plane.saveInstance(ctx, uuid, { vm_state: vmState, task_state: null }, ['rebuilding', null]).catch(() => undefined);
        throw err;
      }
      await this.saveStatus(ctx, move, 'pre-migrating');
      // As nova's evacuation without shared storage leaves the local disk: the volumes stay on the
      // host that is down, detached when it returns and reaps the instance; the instance comes up without them.
      const left = mirroredOf(sysmetaOfRow(existing), sysmetaOfPrimitive(req.primitive));
      if (left)
        this.d.log.warn({ instance: uuid, source: source.host, volumes: left }, 'evacuated without its local volumes, which stay on the host that is down');
      const row = existing ?? (await this.takeOver(ctx, instance, imageRef, vmState));
      await this.spawn(ctx, row, move, imageRef, vmState === 'stopped');
    });
  }

  /** A record for an instance this node has none of (its own records, nova mode): as nova sent it. */
  private takeOver(ctx: RequestContext, instance: Instance, imageRef: string, vmState: VmState): Promise<InstanceRow> {
    const record = buildRecord(instance, imageRef, ctx, { host: this.d.host, node: this.d.node });
    const neutron = this.d.net.adoptedRecordOf(instance);
    if (neutron) record.spec = { ...(record.spec as InstanceSpec), neutron };
    return this.d.store.insertTakenOver(record, { vm_state: vmState, power_state: instance.power_state ?? PowerState.NOSTATE });
  }

  /** The rebuild proper: begin, the container from the image on this node, the record moved here, the migration done. */
  private async spawn(ctx: RequestContext, row: InstanceRow, move: MigrationRow, imageRef: string, wasStopped: boolean): Promise<void> {
    const uuid = row.uuid;
    const run = await this.d.life.begin(ctx, row, 'evacuate');
    try {
      const spec = { ...(JSON.parse(row.spec) as InstanceSpec), image_id: imageRef };
      if (row.image_ref !== imageRef) await this.d.store.setImage(row, imageRef, spec);
      // The instance's host is this one with the control plane before its ports are bound and
      // plugged here: nova-api sends Neutron's network-vif-plugged to the instance's host (nova's
      // own evacuation reaches the destination through the migration context, which a Berth node
      // does not save). A failure hands the instance back to the source below.
      await this.d.plane.saveInstance(ctx, uuid, { host: this.d.host, node: this.d.node });
      // The networks set up again on this host: the project network of this node's agent, or the
      // instance's Neutron ports (nova's setup_instance_network_on_host).
      const prepared = await this.d.net.prepare(ctx, row);
      const status = await this.d.agent.createInstance(uuid, { ...prepared.spec, image_id: imageRef });
      await prepared.plugged?.wait();
      if (wasStopped) {
        await this.d.agent.instanceAction(uuid, { action: 'stop' });
        run.to = { vm_state: 'stopped', power_state: PowerState.SHUTDOWN };
      }
      // nova's finish_evacuation: the instance belongs to this host, then the migration is done;
      // both recorded before the success is announced.
      await this.d.plane.saveInstance(ctx, uuid, { host: this.d.host, node: this.d.node });
      await this.saveStatus(ctx, move, 'done');
      await this.d.life.succeed(run, { launched_at: new Date() }, { ip_address: status.ip_address, host: this.d.host, node: this.d.node });
    } catch (err) {
      this.d.log.warn({ instance: uuid, err: describeError(err) }, 'evacuation failed');
      await this.d.agent
        .deleteInstance(uuid)
        .catch((e) => this.d.log.warn({ instance: uuid, err: describeError(e) }, 'clean-up after a failed evacuation failed'));
      await this.d.life.fail(run, err);
      await this.d.plane
        .saveInstance(ctx, uuid, { host: move.source_compute, node: move.source_node })
        .catch((e: unknown) => this.d.log.warn({ instance: uuid, err: describeError(e) }, 'could not hand a failed evacuation back to the source host'));
      await this.saveStatus(ctx, move, 'failed');
      throw err;
    }
    this.d.log.info({ instance: uuid, from: move.source_compute, migration: move.uuid, request_id: ctx.request_id }, 'instance evacuated to this host');
  }

  /**
   * At start-up (nova's _destroy_evacuated_instances): the instances evacuated away from this host
   * while it was down have their container here removed (this host's only: another host's
   * container of the same instance on a shared engine is not this host's), their allocations on
   * this node's provider released, and their migration completed. `fromPlane`: the evacuations the
   * control plane records (nova's, once the node is registered) rather than the node's own
   * records. Returns the instances whose leftovers were handled.
   */
  async reapEvacuated(fromPlane = false): Promise<string[]> {
    const moves: Array<{ instance_uuid: string; dest: string; complete: () => Promise<void> }> = fromPlane
      ? (await this.d.plane.evacuationsFrom(this.d.host)).map((m) => ({
          instance_uuid: m.instance_uuid,
          dest: String((m.nova as { 'nova_object.data'?: { dest_compute?: unknown } })?.['nova_object.data']?.dest_compute ?? ''),
          complete: async () => {
            await this.d.plane.dropSourceAllocations(m.instance_uuid).catch((err: unknown) => {
              this.d.log.error(
                { instance: m.instance_uuid, err: describeError(err) },
                'could not release the allocations of an instance evacuated from this node',
              );
            });
            await this.d.plane.saveMigration({}, m, 'completed');
          },
        }))
      : (await this.d.store.evacuationsFrom(this.d.host)).map((m) => ({
          instance_uuid: m.instance_uuid,
          dest: m.dest_compute,
          complete: () => this.saveStatus({}, m, 'completed'),
        }));
    const done: string[] = [];
    for (const m of moves) {
      await this.d.locks.run(m.instance_uuid, async () => {
        const uuid = m.instance_uuid;
        if (await this.d.agent.getInstance(uuid)) {
          this.d.log.warn({ instance: uuid, to: m.dest }, 'removing the container of an instance evacuated from this host');
          await this.d.agent.deleteInstance(uuid);
        }
        // A record of its own (nodes with separate records) still says it is here: it ends.
        const row = await this.d.store.get(uuid);
        if (row && !row.deleted && row.host === this.d.host) await this.d.life.removed(row, 'evacuated', { to: m.dest });
        await m.complete();
        done.push(uuid);
      });
    }
    return done;
  }

  private async saveStatus(ctx: RequestContext, m: MigrationRow, status: MigrationStatus): Promise<void> {
    const nova = m.nova ? (JSON.parse(m.nova) as unknown) : null;
    const saved = await this.d.plane.saveMigration(ctx, { uuid: m.uuid, nova }, status).catch((err: unknown) => {
      this.d.log.warn({ migration: m.uuid, status, err: describeError(err) }, 'could not save the migration with the control plane');
      return null;
    });
    await this.d.store.updateMigration(m, status, saved ?? undefined);
  }
}
