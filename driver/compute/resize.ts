import type { AgentClient, FlavorSpec, InstanceSpec } from '../../agent/client/types.js';
import { describeError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { InstanceRow, MigrationRow, MigrationStatus } from '../db/models.js';
import { decodeFlavor, type Flavor } from '../objects/instance.js';
import { field, invalidField, unwrap } from '../objects/primitive.js';
import type { RequestContext } from '../rpc/envelope.js';
import { novaError } from '../rpc/failure.js';
import type { Claims } from './claims.js';
import type { ControlPlane } from './control-plane.js';
import type { Stamps } from './lifecycle.js';
import type { InstanceActionName } from './states.js';
import type { InstanceChanges, InstanceStore } from './store.js';

/** A step's effect tells the lifecycle what else its success records (manager.powerAction). */
export class Outcome {
  constructor(
    readonly stamps: Stamps = {},
    readonly local: InstanceChanges = {},
  ) {}
}

/** Runs one transition-table row under the instance's lock (ComputeManager.powerAction). */
export type Step = (ctx: RequestContext, uuid: string, name: InstanceActionName, effect: (row: InstanceRow) => Promise<Outcome>) => Promise<void>;

/** nova's Migration argument: the parts a same-host resize needs, and the primitive to save back. */
export interface MigrationArg {
  uuid: string;
  migration_type: 'resize' | 'migration';
  /** The two ends as the conductor (or the destination's prep_resize) filled them in; null when absent. */
  source_compute: string | null;
  dest_compute: string | null;
  primitive: unknown;
}

export function decodeMigration(value: unknown, path = 'migration'): MigrationArg {
  const d = unwrap(value, 'Migration', path, [1]);
  const uuid = field.optStr(d, 'uuid', path);
  if (!uuid) throw invalidField(`${path}.uuid`, 'missing');
  const type = field.optStr(d, 'migration_type', path) ?? 'resize';
  if (type !== 'resize' && type !== 'migration') throw invalidField(`${path}.migration_type`, `a cold move cannot be ${type}`);
  return {
    uuid,
    migration_type: type,
    source_compute: field.optStr(d, 'source_compute', path) ?? null,
    dest_compute: field.optStr(d, 'dest_compute', path) ?? null,
    primitive: value,
  };
}

export interface ResizeDeps {
  host: string;
  node: string;
  store: InstanceStore;
  agent: AgentClient;
  plane: ControlPlane;
  claims: Claims;
  log: Logger;
  step: Step;
}

export const flavorSpec = (f: Flavor): FlavorSpec => ({ vcpus: f.vcpus, memory_mb: f.memory_mb, root_gb: f.root_gb, swap: f.swap, extra_specs: f.extra_specs });

/** The flavor fields nova's _set_instance_info saves with a flavor change. */
export function flavorStamps(prim: unknown, f: Flavor): Stamps {
  const id = (prim as { 'nova_object.data'?: { id?: unknown } })['nova_object.data']?.id;
  return {
    flavor: prim,
    vcpus: f.vcpus,
    memory_mb: f.memory_mb,
    root_gb: f.root_gb,
    ephemeral_gb: f.ephemeral_gb,
    ...(typeof id === 'number' ? { instance_type_id: id } : {}),
  };
}

/** The record's flavor and agent spec for a flavor the container now has. */
export function recordOf(row: InstanceRow, f: Flavor): InstanceChanges {
  const spec = JSON.parse(row.spec) as InstanceSpec;
  return { flavor: JSON.stringify(f), spec: JSON.stringify({ ...spec, flavor: flavorSpec(f) }) };
}

/**
 * Resize on this host (nova's prep_resize → resize_instance → finish_resize, then
 * confirm_resize or revert_resize → finish_revert_resize): the container keeps running while its
 * limits change in place (the agent's PUT /v1/instances/{uuid}/flavor). Each step is a row of the
 * transition table run by `step`; the move is recorded as nova's Migration is (migrations table,
 * and the authority's record in nova mode) and claims the new flavor until confirmed or reverted.
 * A move to another node is refused here (MigrationError): the scheduler then tries another host.
 */
export class Resizes {
  constructor(private readonly d: ResizeDeps) {}

  /** prep_resize: the move claim and record, then, on this same host, resize_instance and finish_resize in turn. */
  async prep(
    ctx: RequestContext,
    instance: { uuid: string; host: string | null; flavor: unknown },
    flavorPrim: unknown,
    migration: MigrationArg,
  ): Promise<void> {
    const { uuid } = instance;
    const flavor = decodeFlavor(flavorPrim, 'flavor');
    if (instance.host !== null && instance.host !== this.d.host) {
      throw novaError(
        'MigrationError',
        400,
        `Migration error: instance ${uuid} is on ${instance.host}; a Berth node resizes only its own instances, in place.`,
        {
          reason: 'cross-node moves are not supported by the Berth driver',
        },
      );
    }
    if (migration.migration_type === 'migration') {
      // nova's answer for a driver without supports_migrate_to_same_host: a cold migration must leave the host.
      throw novaError('UnableToMigrateToSelf', 400, `Unable to migrate instance (${uuid}) to current host (${this.d.host}).`, {
        instance_id: uuid,
        host: this.d.host,
      });
    }
    await this.guarded(ctx, migration, uuid, () =>
      this.d.step(ctx, uuid, 'resize_prep', async (row) => {
        if (!(await this.d.store.getMigration(migration.uuid))) {
          await this.d.claims.moveClaim(flavor, () =>
            this.d.store.insertMigration({
              uuid: migration.uuid,
              instance_uuid: uuid,
              migration_type: migration.migration_type,
              source_compute: this.d.host,
              dest_compute: this.d.host,
              source_node: this.d.node,
              dest_node: this.d.node,
              old_flavor: JSON.stringify(instance.flavor),
              new_flavor: JSON.stringify(flavorPrim),
              old_vm_state: row.vm_state,
              status: 'pre-migrating',
              nova: migration.primitive ? JSON.stringify(migration.primitive) : '',
            }),
          );
        }
        await this.setStatus(ctx, migration.uuid, 'pre-migrating');
        return new Outcome({ new_flavor: flavorPrim });
      }),
    );
    await this.resizeInstance(ctx, uuid, migration);
    await this.finish(ctx, uuid, migration);
  }

  /** resize_instance (the source's half): nothing leaves this host; the move goes migrating, then post-migrating. */
  async resizeInstance(ctx: RequestContext, uuid: string, migration: MigrationArg): Promise<void> {
    await this.guarded(ctx, migration, uuid, () =>
      this.d.step(ctx, uuid, 'resize', async () => {
        const m = await this.setStatus(ctx, migration.uuid, 'migrating');
        await this.setStatus(ctx, migration.uuid, 'post-migrating');
        return new Outcome({ old_flavor: JSON.parse(m.old_flavor) });
      }),
    );
  }

  /** finish_resize: the new flavor's limits on the container (driver.finish_migration), the instance `resized`. */
  async finish(ctx: RequestContext, uuid: string, migration: MigrationArg): Promise<void> {
    await this.guarded(ctx, migration, uuid, () =>
      this.d.step(ctx, uuid, 'resize_finish', async (row) => {
        const m = await this.open(migration.uuid);
        const prim = JSON.parse(m.new_flavor) as unknown;
        const flavor = decodeFlavor(prim, 'new_flavor');
        await this.d.agent.resizeInstance(uuid, flavorSpec(flavor));
        await this.setStatus(ctx, m.uuid, 'finished');
        return new Outcome({ ...flavorStamps(prim, flavor), launched_at: new Date() }, recordOf(row, flavor));
      }),
    );
  }

  /** confirm_resize: the old flavor's claim and its migration consumer's allocations released. Repeatable. */
  async confirm(ctx: RequestContext, uuid: string, migration: MigrationArg): Promise<void> {
    const m = await this.d.store.getMigration(migration.uuid);
    if (m?.status === 'confirmed') return this.d.log.info({ instance: uuid, migration: m.uuid }, 'migration already confirmed');
    if (!m || m.status !== 'finished') {
      this.d.log.warn({ instance: uuid, migration: migration.uuid, status: m?.status ?? null }, 'unexpected confirmation of a migration; nothing to do');
      return;
    }
    await this.d.step(ctx, uuid, 'resize_confirm', async () => {
      await this.setStatus(ctx, m.uuid, 'confirmed');
      await this.d.plane.dropMoveAllocations(ctx, m.uuid);
      return new Outcome({ old_flavor: null, new_flavor: null });
    });
  }

  /**
   * revert_resize and finish_revert_resize (one host, so both halves at once): the old flavor's
   * limits back on the container, the migration's allocations back to the instance. Repeatable.
   */
  async revert(ctx: RequestContext, uuid: string, migration: MigrationArg): Promise<void> {
    const m = await this.d.store.getMigration(migration.uuid);
    if (m?.status === 'reverted') return this.d.log.info({ instance: uuid, migration: m.uuid }, 'migration already reverted');
    if (!m || m.status !== 'finished') throw novaError('MigrationNotFound', 404, `Migration ${migration.uuid} could not be found or is not finished.`);
    await this.d.step(ctx, uuid, 'resize_revert', async (row) => {
      const prim = JSON.parse(m.old_flavor) as unknown;
      const flavor = decodeFlavor(prim, 'old_flavor');
      await this.d.agent.resizeInstance(uuid, flavorSpec(flavor));
      await this.setStatus(ctx, m.uuid, 'reverted');
      await this.d.plane.revertMoveAllocations(ctx, m.uuid, uuid);
      return new Outcome({ ...flavorStamps(prim, flavor), old_flavor: null, new_flavor: null, launched_at: new Date() }, recordOf(row, flavor));
    });
  }

  private async open(uuid: string): Promise<MigrationRow> {
    const m = await this.d.store.getMigration(uuid);
    if (!m) throw novaError('MigrationNotFound', 404, `Migration ${uuid} could not be found.`, { migration_id: uuid });
    return m;
  }

  /** The move's status here and with the authority. */
  private async setStatus(ctx: RequestContext, uuid: string, status: MigrationStatus): Promise<MigrationRow> {
    const m = await this.open(uuid);
    const nova = m.nova ? (JSON.parse(m.nova) as unknown) : null;
    const saved = await this.d.plane.saveMigration(ctx, { uuid, nova }, status);
    await this.d.store.updateMigration(m, status, saved);
    return m;
  }

  /**
   * A failed step leaves the move in `error` with its allocations handed back to the instance
   * (nova's errors_out_migration and _revert_allocation); the step's own row recorded the fault.
   */
  private async guarded(ctx: RequestContext, migration: MigrationArg, uuid: string, run: () => Promise<void>): Promise<void> {
    try {
      await run();
    } catch (err) {
      const m = await this.d.store.getMigration(migration.uuid);
      if (m && m.status !== 'error') {
        await this.setStatus(ctx, m.uuid, 'error').catch((e: unknown) => this.d.log.warn({ err: describeError(e) }, 'could not mark the migration failed'));
      }
      // Also when the claim failed before the move was recorded: the scheduler moved them already.
      await this.d.plane
        .revertMoveAllocations(ctx, migration.uuid, uuid)
        .catch((e: unknown) => this.d.log.warn({ err: describeError(e) }, 'could not give the allocations back to the instance'));
      throw err;
    }
  }
}
