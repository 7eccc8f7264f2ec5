import type { AgentClient, InstanceSpec } from '../../agent/client/types.js';
import { describeError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { ImageService } from '../../glance-bridge/client/types.js';
import type { MigrationRow, MigrationStatus } from '../db/models.js';
import { decodeFlavor } from '../objects/instance.js';
import type { RequestContext } from '../rpc/envelope.js';
import { novaError } from '../rpc/failure.js';
import type { Claims } from './claims.js';
import type { ControlPlane } from './control-plane.js';
import type { PeerCompute } from './peers.js';
import { flavorSpec, flavorStamps, Outcome, recordOf, type MigrationArg, type Step } from './resize.js';
import type { InstanceStore, MovedRecord } from './store.js';
import { carriedOf, destNodeOf, movedRecordOf, oldFlavorOf, withDestination, type Carried } from './migrate-carry.js';
import { sendFilesystem } from './migrate-send.js';
import { networksForMove } from './move-networks.js';
import type { SpawnNetworks } from './spawn-networks.js';
import { refuseMoveWithVolumes, type LocalVolumeSource } from './local-volumes.js';
import { refuseMirroredVolumes } from './move-refusal.js';

export interface MigrateDeps {
  host: string;
  node: string;
  store: InstanceStore;
  agent: AgentClient;
  plane: ControlPlane;
  claims: Claims;
  images?: ImageService;
  peers?: PeerCompute;
  /** The instance's networks on this host (Neutron's ports follow a move). */
  net?: SpawnNetworks;
  log: Logger;
  step: Step;
  /** How often a snapshot's progress is polled. */
  pollMs?: number;
  /** The agent's local volumes: an instance with one attached does not leave this host. */
  volumes?: LocalVolumeSource;
}

/** What prep_resize carried that the destination passes on to the source's resize_instance. */
export interface MoveRequest {
  instance: { uuid: string; host: string; node: string | null; image_ref: string; vm_state: string; flavor: unknown; primitive: unknown };
  flavor: unknown;
  image: unknown;
  request_spec: unknown;
  clean_shutdown: boolean;
}

/**
 * A resize or cold migration to another Berth node (nova/compute/manager.py: prep_resize on the
 * destination, resize_instance on the source, finish_resize on the destination, then
 * confirm_resize on the source or revert_resize on the destination and finish_revert_resize on
 * the source). The filesystem moves as an image through the image store: the source stops the
 * container, commits it and uploads the commit without the layers of the instance's image, which
 * the destination fetched in its prep; the destination boots that image with the new flavor.
 *
 * Each node keeps its own record of the instance (or the nodes share one database and one row):
 * the record goes with the instance, by its `host` (`InstanceStore.placeMoved`). Two Berth casts
 * (namespace `berth` 1.1) keep both ends' records in step where nova's own database would:
 * `resize_finished` (destination → source: the instance is on the destination now) and
 * `confirm_resize_at_destination` (source → destination: the move is confirmed).
 */
export class Migrations {
  constructor(private readonly d: MigrateDeps) {}

  private get peers(): PeerCompute {
    if (!this.d.peers) throw novaError('MigrationError', 400, 'Migration error: this Berth node cannot reach other compute nodes.', { reason: 'no peers' });
    return this.d.peers;
  }

  /** prep_resize on the destination: the image present here, the move claim, then resize_instance to the source. */
  async prepDestination(ctx: RequestContext, req: MoveRequest, migration: MigrationArg): Promise<void> {
    const { instance } = req;
    const flavor = decodeFlavor(req.flavor, 'flavor');
    // Before the claim: local volumes its host mirrored cannot follow the instance here.
    await refuseMirroredVolumes(this.d, ctx, instance, migration);
    try {
      // Can this host run the instance's image? The source sends only what the image lacks.
      await this.d.agent.fetchImage(instance.image_ref).catch((err: unknown) => {
        throw novaError('MigrationError', 400, `Migration error: ${this.d.host} cannot fetch image ${instance.image_ref}: ${describeError(err)}`, {
          reason: describeError(err),
        });
      });
      if (!(await this.d.store.getMigration(migration.uuid))) {
        await this.d.claims.moveClaim(flavor, () =>
          this.d.store.insertMigration({
            uuid: migration.uuid,
            instance_uuid: instance.uuid,
            migration_type: migration.migration_type,
            source_compute: instance.host,
            dest_compute: this.d.host,
            source_node: instance.node ?? instance.host,
            dest_node: this.d.node,
            old_flavor: JSON.stringify(instance.flavor),
            new_flavor: JSON.stringify(req.flavor),
            old_vm_state: instance.vm_state,
            status: 'pre-migrating',
            nova: migration.primitive ? JSON.stringify(withDestination(migration.primitive, this.d.host, this.d.node)) : '',
          }),
        );
      }
      // nova's resize claim: the destination names itself on the move, with the authority too.
      await this.setStatus(ctx, migration.uuid, 'pre-migrating', { dest_compute: this.d.host, dest_node: this.d.node });
      await this.peers.cast(instance.host, ctx, 'resize_instance', {
        instance: instance.primitive,
        migration: withDestination(migration.primitive, this.d.host, this.d.node),
        image: req.image,
        flavor: req.flavor,
        clean_shutdown: req.clean_shutdown,
        request_spec: req.request_spec,
      });
    } catch (err) {
      await this.failMove(ctx, migration.uuid, instance.uuid);
      throw err;
    }
  }

  /**
   * resize_instance on the source: the move recorded here (resize_prep), then (resize) the guest
   * stopped, its filesystem committed and sent through the image store without its base layers,
   * then finish_resize to the destination with that image and this node's record.
   */
  async resizeSource(ctx: RequestContext, req: Omit<MoveRequest, 'instance'> & { uuid: string; primitive: unknown }, migration: MigrationArg): Promise<void> {
    const { uuid } = req;
    const dest = migration.dest_compute;
    if (!dest || dest === this.d.host) throw novaError('MigrationError', 400, `Migration error: migration ${migration.uuid} names no other destination.`);
    let carried: Carried | null = null;
    try {
      await this.d.step(ctx, uuid, 'resize_prep', async (row) => {
        // The authoritative check, before anything changes: the instance keeps its state, with a fault.
        await refuseMoveWithVolumes(this.d.volumes, uuid, migration.migration_type === 'resize' ? 'resize' : 'migrate');
        if (!(await this.d.store.getMigration(migration.uuid))) {
          await this.d.store.insertMigration({
            uuid: migration.uuid,
            instance_uuid: uuid,
            migration_type: migration.migration_type,
            source_compute: this.d.host,
            dest_compute: dest,
            source_node: this.d.node,
            dest_node: dest,
            old_flavor: JSON.stringify(oldFlavorOf(req.primitive, row)),
            new_flavor: JSON.stringify(req.flavor),
            old_vm_state: row.vm_state,
            status: 'pre-migrating',
            nova: migration.primitive ? JSON.stringify(migration.primitive) : '',
          });
        }
        return new Outcome({ new_flavor: req.flavor });
      });
      await this.d.step(ctx, uuid, 'resize', async (row) => {
        const m = await this.setStatus(ctx, migration.uuid, 'migrating');
        carried = await sendFilesystem(this.d, row, m, req.clean_shutdown);
        await this.setStatus(ctx, m.uuid, 'post-migrating');
        // As nova's _resize_instance: the instance belongs to the destination from here (Neutron's
        // events for its ports go there while it plugs them).
        return new Outcome({ old_flavor: JSON.parse(m.old_flavor), host: dest, node: destNodeOf(migration) ?? dest });
      });
    } catch (err) {
      await this.failMove(ctx, migration.uuid, uuid);
      throw err;
    }
    await this.peers.cast(dest, ctx, 'finish_resize', {
      instance: req.primitive,
      migration: migration.primitive,
      image: req.image,
      disk_info: JSON.stringify(carried),
      request_spec: req.request_spec,
    });
  }

  /** finish_resize on the destination: the record placed here, the image booted with the new flavor, the instance `resized`. */
  async finishDestination(ctx: RequestContext, uuid: string, migration: MigrationArg, diskInfo: unknown): Promise<void> {
    const carried = carriedOf(diskInfo);
    const m = await this.open(migration.uuid);
    try {
      if ((await this.d.store.get(uuid))?.host !== this.d.host) {
        await this.d.store.placeMoved(carried.record, this.d.host, this.d.node, { task_state: 'resize_migrated' });
      }
      await this.d.step(ctx, uuid, 'resize_finish', async (row) => {
        const prim = JSON.parse(m.new_flavor) as unknown;
        const flavor = decodeFlavor(prim, 'new_flavor');
        const local = recordOf(row, flavor);
        const moved = this.d.net ? await networksForMove(this.d.net, this.d.store, ctx, row) : null;
        const changed = { image_id: carried.image_id, flavor: flavorSpec(flavor) };
        // Without networking of its own (tests): a new address on this node's network.
        const { vifs: _vifs, neutron: _neutron, ...kept } = JSON.parse(local.spec!) as InstanceSpec & { neutron?: unknown };
        const spec: InstanceSpec = moved ? { ...moved.spec, ...changed } : { ...kept, ...changed, fixed_ip: null };
        let status;
        try {
          status = await this.d.agent.createInstance(uuid, spec);
          await moved?.plugged?.wait();
        } finally {
          moved?.plugged?.cancel();
        }
        if (m.old_vm_state === 'stopped') await this.d.agent.instanceAction(uuid, { action: 'stop' });
        await this.d.store.setTransfer(m, carried.image_id, carried.bytes);
        await this.setStatus(ctx, m.uuid, 'finished');
        // nova saves the three flavors together (Instance._save_flavor): the old one, which the
        // instance this node was sent may lack, goes along, or nova would forget it (and refuse a revert).
        return new Outcome(
          {
            ...flavorStamps(prim, flavor),
            old_flavor: JSON.parse(m.old_flavor),
            new_flavor: prim,
            host: this.d.host,
            node: this.d.node,
            launched_at: new Date(),
          },
          { ...local, spec: JSON.stringify(moved ? { ...moved.stored, ...changed } : spec), ip_address: status.ip_address },
        );
      });
    } catch (err) {
      await this.failMove(ctx, m.uuid, uuid);
      throw err;
    }
    await this.peers.cast(m.source_compute, ctx, 'resize_finished', { instance_uuid: uuid, migration_uuid: m.uuid }, { namespace: 'berth', version: '1.1' });
  }

  /** Berth's resize_finished on the source: the instance runs on the destination now; this node's record follows it. */
  async finishedAtDestination(uuid: string, migrationUuid: string): Promise<void> {
    const m = await this.d.store.getMigration(migrationUuid);
    const row = await this.d.store.get(uuid);
    if (!m || !row || row.deleted) return;
    if (m.status === 'post-migrating') await this.d.store.updateMigration(m, 'finished');
    if (row.host === this.d.host) await this.d.store.placeMoved(movedRecordOf(row), m.dest_compute, m.dest_node, { vm_state: 'resized', task_state: null });
  }

  /** confirm_resize on the source: the old container removed and its claim and allocations freed; the destination told. Repeatable. */
  async confirmSource(ctx: RequestContext, uuid: string, migration: MigrationArg): Promise<void> {
    const m = await this.d.store.getMigration(migration.uuid);
    if (m?.status === 'confirmed') return this.d.log.info({ instance: uuid, migration: migration.uuid }, 'migration already confirmed');
    if (!m || (m.status !== 'finished' && m.status !== 'post-migrating')) {
      throw novaError('MigrationNotFound', 404, `Migration ${migration.uuid} could not be found or is not finished.`, { migration_id: migration.uuid });
    }
    await this.d.agent.deleteInstance(uuid);
    await this.finishedAtDestination(uuid, m.uuid);
    await this.setStatus(ctx, m.uuid, 'confirmed');
    await this.d.plane.dropMoveAllocations(ctx, m.uuid);
    await this.dropImage(m);
    await this.peers.cast(
      m.dest_compute,
      ctx,
      'confirm_resize_at_destination',
      { instance_uuid: uuid, migration_uuid: m.uuid },
      { namespace: 'berth', version: '1.1' },
    );
  }

  /** Berth's confirm_resize_at_destination: the instance leaves `resized` here (resize_confirm). Repeatable. */
  async confirmAtDestination(ctx: RequestContext, uuid: string, migrationUuid: string): Promise<void> {
    const row = await this.d.store.get(uuid);
    if (!row || row.deleted || row.host !== this.d.host || row.vm_state !== 'resized') return;
    await this.d.step(ctx, uuid, 'resize_confirm', async () => {
      const m = await this.d.store.getMigration(migrationUuid);
      if (m && m.status !== 'confirmed') await this.d.store.updateMigration(m, 'confirmed');
      return new Outcome({ old_flavor: null, new_flavor: null });
    });
  }

  /** revert_resize on the destination: the new container removed, the claim here freed, finish_revert_resize to the source. */
  async revertDestination(ctx: RequestContext, instance: { uuid: string; primitive: unknown }, migration: MigrationArg, requestSpec: unknown): Promise<void> {
    const { uuid } = instance;
    const m = await this.d.store.getMigration(migration.uuid);
    if (m?.status === 'reverted' || m?.status === 'reverting')
      return this.d.log.info({ instance: uuid, migration: migration.uuid }, 'migration already reverting');
    if (!m || m.status !== 'finished') throw novaError('MigrationNotFound', 404, `Migration ${migration.uuid} could not be found or is not finished.`);
    const row = await this.d.store.get(uuid);
    await this.d.agent.deleteInstance(uuid);
    await this.setStatus(ctx, m.uuid, 'reverting');
    if (row && row.host === this.d.host) {
      await this.d.store.placeMoved(movedRecordOf(row), m.source_compute, m.source_node, { vm_state: 'resized', task_state: null });
    }
    await this.peers.cast(m.source_compute, ctx, 'finish_revert_resize', {
      instance: instance.primitive,
      migration: migration.primitive,
      request_spec: requestSpec,
    });
  }

  /** finish_revert_resize on the source: the record back here, the original container started again, allocations back to the instance. */
  async finishRevertSource(ctx: RequestContext, uuid: string, migration: MigrationArg): Promise<void> {
    const m = await this.d.store.getMigration(migration.uuid);
    if (m?.status === 'reverted') return this.d.log.info({ instance: uuid, migration: migration.uuid }, 'migration already reverted');
    if (!m) throw novaError('MigrationNotFound', 404, `Migration ${migration.uuid} could not be found.`, { migration_id: migration.uuid });
    const row = await this.d.store.get(uuid);
    if (!row) throw novaError('InstanceNotFound', 404, `Instance ${uuid} could not be found.`, { instance_id: uuid });
    if (row.host !== this.d.host || row.vm_state !== 'resized') {
      await this.d.store.placeMoved(movedRecordOf(row), this.d.host, this.d.node, { vm_state: 'resized', task_state: null });
    }
    await this.d.step(ctx, uuid, 'resize_revert', async (r) => {
      const prim = JSON.parse(m.old_flavor) as unknown;
      const flavor = decodeFlavor(prim, 'old_flavor');
      // nova's _revert_instance_flavor_host_node comes before the networks are set up here: the
      // ports' events go to this host, and the ports are bound to it again.
      await this.d.plane.saveInstance(ctx, uuid, { host: this.d.host, node: this.d.node });
      const moved = this.d.net ? await networksForMove(this.d.net, this.d.store, ctx, r) : null;
      try {
        if (m.old_vm_state !== 'stopped') {
          await this.d.agent.instanceAction(uuid, { action: 'start' });
          await moved?.plugged?.wait();
        }
      } finally {
        moved?.plugged?.cancel();
      }
      await this.setStatus(ctx, m.uuid, 'reverted');
      await this.d.plane.revertMoveAllocations(ctx, m.uuid, uuid);
      const fresh = (await this.d.store.get(uuid)) ?? r;
      return new Outcome({ ...flavorStamps(prim, flavor), host: this.d.host, node: this.d.node, old_flavor: null, new_flavor: null }, recordOf(fresh, flavor));
    });
    await this.dropImage(m);
  }

  /** The image that carried the move: the destination's engine keeps what its container runs. */
  private async dropImage(m: MigrationRow): Promise<void> {
    if (!m.image_id || !this.d.images) return;
    await this.d.images
      .deleteImage(m.image_id)
      .catch((err: unknown) => this.d.log.warn({ image: m.image_id, err: describeError(err) }, 'could not delete the image of a move'));
  }

  private async open(uuid: string): Promise<MigrationRow> {
    const m = await this.d.store.getMigration(uuid);
    if (!m) throw novaError('MigrationNotFound', 404, `Migration ${uuid} could not be found.`, { migration_id: uuid });
    return m;
  }

  private async setStatus(ctx: RequestContext, uuid: string, status: MigrationStatus, fields?: Record<string, unknown>): Promise<MigrationRow> {
    const m = await this.open(uuid);
    const saved = await this.d.plane.saveMigration(ctx, { uuid, nova: m.nova ? (JSON.parse(m.nova) as unknown) : null }, status, fields);
    await this.d.store.updateMigration(m, status, saved);
    return m;
  }

  /** nova's errors_out_migration and _revert_allocation: the move `error`, the allocations back to the instance. */
  private async failMove(ctx: RequestContext, migrationUuid: string, uuid: string): Promise<void> {
    const m = await this.d.store.getMigration(migrationUuid);
    if (m && m.status !== 'error')
      await this.setStatus(ctx, m.uuid, 'error').catch((e: unknown) => this.d.log.warn({ err: describeError(e) }, 'could not mark the migration failed'));
    await this.d.plane
      .revertMoveAllocations(ctx, migrationUuid, uuid)
      .catch((e: unknown) => this.d.log.warn({ err: describeError(e) }, 'could not give the allocations back to the instance'));
  }
}

export type { MovedRecord };
