import { Op, UniqueConstraintError, type Sequelize } from 'sequelize';
import { durabilityBarrier, type DurabilityBarrier } from '../../common/db.js';
import {
  InstanceActionRow,
  InstanceFaultRow,
  InstanceRow,
  MigrationRow,
  ProcessedMessageRow,
  type MigrationStatus,
  type TaskState,
  type VmState,
} from '../db/models.js';
import type { MessageLog } from '../rpc/server.js';

export interface NewInstance {
  uuid: string;
  display_name: string;
  hostname: string;
  project_id: string;
  user_id: string;
  image_ref: string;
  flavor: unknown;
  host: string;
  node: string;
  spec: unknown;
  nova: unknown;
}

/**
 * Whether an instance's flavor counts toward its host's usage: not deleted, not a build that
 * failed before it ever ran, and not shelved and offloaded (it has no container on any host)
 * unless it is being unshelved here (task spawning: its claim is this host's from then on).
 */
export function countsTowardUsage(r: Pick<InstanceRow, 'deleted' | 'vm_state' | 'task_state' | 'launched_at'>): boolean {
  return !r.deleted && !(r.vm_state === 'error' && r.launched_at === null) && !(r.vm_state === 'shelved_offloaded' && r.task_state !== 'spawning');
}

export type InstanceChanges = Partial<
  Pick<
    InstanceRow,
    | 'vm_state'
    | 'task_state'
    | 'power_state'
    | 'ip_address'
    | 'launched_at'
    | 'terminated_at'
    | 'deleted_at'
    | 'deleted'
    | 'flavor'
    | 'spec'
    | 'host'
    | 'node'
    | 'nova'
  >
>;

/** What a node sends of an instance's record when the instance moves to another node. */
export interface MovedRecord {
  uuid: string;
  display_name: string;
  hostname: string;
  project_id: string;
  user_id: string;
  image_ref: string;
  flavor: unknown;
  spec: unknown;
  nova: unknown;
  vm_state: VmState;
  task_state: TaskState | null;
  power_state: number;
  launched_at: Date | null;
}

/** A move whose claim still counts on its hosts: not confirmed, reverted or failed. */
export const OPEN_MIGRATION: readonly MigrationStatus[] = ['pre-migrating', 'migrating', 'post-migrating', 'finished'];

export type NewMigration = Pick<
  MigrationRow,
  | 'uuid'
  | 'instance_uuid'
  | 'migration_type'
  | 'source_compute'
  | 'dest_compute'
  | 'source_node'
  | 'dest_node'
  | 'old_flavor'
  | 'new_flavor'
  | 'old_vm_state'
  | 'status'
  | 'nova'
>;

/** The driver's records: instances, their faults and actions, and processed message ids. */
export class InstanceStore implements MessageLog {
  /**
   * Makes every change recorded so far durable (one shared sync of the database's log, see
   * common/db.ts). Commits themselves are not synced one by one: whatever leaves the driver (an
   * acknowledgement, a reply, a notification) waits for this first.
   */
  readonly durable: DurabilityBarrier;

  constructor(private readonly db: Sequelize) {
    this.durable = durabilityBarrier(db);
  }

  private usageEpoch = 0;
  /**
   * Moves on whenever a row of this store starts or stops counting toward its host's usage
   * (countsTowardUsage): a usage read at one version holds as long as the version does.
   */
  get usageVersion(): number {
    return this.usageEpoch;
  }

  get(uuid: string): Promise<InstanceRow | null> {
    return InstanceRow.findByPk(uuid);
  }

  listActive(host: string): Promise<InstanceRow[]> {
    return InstanceRow.findAll({ where: { host, deleted: false }, order: [['created_at', 'ASC']] });
  }

  /** The instances of `host` (of every host on this database when null). */
  listAll(host: string | null, includeDeleted = false): Promise<InstanceRow[]> {
    const where = { ...(host === null ? {} : { host }), ...(includeDeleted ? {} : { deleted: false }) };
    return InstanceRow.findAll({ where, order: [['created_at', 'ASC']] });
  }

  /**
   * Inserts a building instance the caller found absent. A plain insert, not findOrCreate: that
   * one wraps the two in a transaction of its own, which on SQLite takes a second connection and
   * waits on the first one's writes in busy sleeps. The uuid is the key, so a row inserted
   * meanwhile by anyone makes the insert fail, and that row is returned instead.
   */
  async insertBuilding(i: NewInstance): Promise<{ row: InstanceRow; created: boolean }> {
    try {
      const row = await InstanceRow.create({
        ...i,
        flavor: JSON.stringify(i.flavor),
        spec: JSON.stringify(i.spec),
        nova: JSON.stringify(i.nova),
        vm_state: 'building' satisfies VmState,
        task_state: 'spawning' satisfies TaskState,
        power_state: 0,
        deleted: false,
      });
      this.usageEpoch++;
      return { row, created: true };
    } catch (err) {
      const row = err instanceof UniqueConstraintError ? await InstanceRow.findByPk(i.uuid) : null;
      if (row) return { row, created: false };
      throw err;
    }
  }

  /**
   * Applies changes only if the row still has `expectedTask` (nova's expected_task_state guard),
   * so two operations on one instance cannot both win.
   */
  async update(row: InstanceRow, changes: InstanceChanges, expectedTask?: TaskState | null): Promise<boolean> {
    const where: Record<string, unknown> = { uuid: row.uuid };
    if (expectedTask !== undefined) where.task_state = expectedTask;
    const counted = countsTowardUsage(row);
    const [n] = await InstanceRow.update(changes, { where });
    if (n === 1) await row.reload();
    // Also when nothing matched: the row may have changed under another writer meanwhile.
    if (n !== 1 || countsTowardUsage(row) !== counted || changes.flavor !== undefined || changes.host !== undefined) this.usageEpoch++;
    return n === 1;
  }

  /** Records a move; its claim counts toward the host's usage while it is open (OPEN_MIGRATION). */
  async insertMigration(m: NewMigration): Promise<MigrationRow> {
    const row = await MigrationRow.create({ ...m });
    this.usageEpoch++;
    return row;
  }

  /** A move between nodes: the image that carried the filesystem and its bytes. */
  async setTransfer(m: MigrationRow, imageId: string, bytes: number): Promise<void> {
    await m.update({ image_id: imageId, transferred_bytes: bytes });
  }

  /**
   * An instance moving between nodes: its record here (a copy of the other node's, inserted when
   * this node has none; the one row when the nodes share a database) now says `host`, with
   * `changes`. A record whose host is another node is not this node's instance any more (lists,
   * usage and the power-state sync go by host).
   */
  async placeMoved(record: MovedRecord, host: string, node: string, changes: InstanceChanges = {}): Promise<InstanceRow> {
    // The sender's record wins over an older copy here (this node's from an earlier move).
    const fields = {
      ...record,
      flavor: JSON.stringify(record.flavor),
      spec: JSON.stringify(record.spec),
      nova: JSON.stringify(record.nova),
      host,
      node,
      deleted: false,
      deleted_at: null,
      terminated_at: null,
      ...changes,
    };
    let row = await InstanceRow.findByPk(record.uuid);
    if (!row) {
      try {
        row = await InstanceRow.create(fields);
        this.usageEpoch++;
        return row;
      } catch (err) {
        row = err instanceof UniqueConstraintError ? await InstanceRow.findByPk(record.uuid) : null;
        if (!row) throw err;
      }
    }
    await row.update(fields);
    this.usageEpoch++;
    return row;
  }

  /** The move's new status (and nova's record of it, when the authority answered one). */
  async updateMigration(m: MigrationRow, status: MigrationStatus, nova?: unknown): Promise<void> {
    await m.update({ status, ...(nova ? { nova: JSON.stringify(nova) } : {}) });
    this.usageEpoch++;
  }

  getMigration(uuid: string): Promise<MigrationRow | null> {
    return MigrationRow.findOne({ where: { uuid } });
  }

  /** The instance's newest move, open or not. */
  latestMigration(instanceUuid: string): Promise<MigrationRow | null> {
    return MigrationRow.findOne({ where: { instance_uuid: instanceUuid }, order: [['id', 'DESC']] });
  }

  /**
   * Evacuations away from `host` whose leftovers that host has not removed yet (nova's
   * _destroy_evacuated_instances: accepted, pre-migrating or done).
   */
  evacuationsFrom(host: string): Promise<MigrationRow[]> {
    return MigrationRow.findAll({
      where: { source_compute: host, migration_type: 'evacuation', status: ['accepted', 'pre-migrating', 'done'] },
      order: [['id', 'ASC']],
    });
  }

  /**
   * Records an instance this node takes over with no record of it here (an evacuation in nova
   * mode, where each node keeps its own records): as it was on its old host, with no task.
   */
  async insertTakenOver(i: NewInstance, state: { vm_state: VmState; power_state: number }): Promise<InstanceRow> {
    const row = await InstanceRow.create({
      ...i,
      flavor: JSON.stringify(i.flavor),
      spec: JSON.stringify(i.spec),
      nova: JSON.stringify(i.nova),
      ...state,
      task_state: null,
      deleted: false,
    });
    this.usageEpoch++;
    return row;
  }

  /** Open moves into or out of `host`. */
  openMigrations(host: string): Promise<MigrationRow[]> {
    return MigrationRow.findAll({ where: { [Op.or]: [{ source_compute: host }, { dest_compute: host }], status: [...OPEN_MIGRATION] } });
  }

  async setImage(row: InstanceRow, imageRef: string, spec: unknown): Promise<void> {
    await row.update({ image_ref: imageRef, spec: JSON.stringify(spec) });
  }

  async addFault(uuid: string, code: number, message: string, details = ''): Promise<void> {
    await InstanceFaultRow.create({ instance_uuid: uuid, code, message: message.slice(0, 255), details });
  }

  latestFault(uuid: string): Promise<InstanceFaultRow | null> {
    return InstanceFaultRow.findOne({ where: { instance_uuid: uuid }, order: [['id', 'DESC']] });
  }

  async startAction(
    uuid: string,
    action: string,
    ctx: { request_id?: string; user_id?: string | null; project_id?: string | null },
  ): Promise<InstanceActionRow> {
    return InstanceActionRow.create({
      instance_uuid: uuid,
      action,
      request_id: ctx.request_id ?? null,
      user_id: ctx.user_id ?? null,
      project_id: ctx.project_id ?? null,
      start_time: new Date(),
    });
  }

  async finishAction(action: InstanceActionRow, result: 'Success' | 'Error', message: string | null = null): Promise<void> {
    await action.update({ result, message, finish_time: new Date() });
  }

  actions(uuid: string): Promise<InstanceActionRow[]> {
    return InstanceActionRow.findAll({ where: { instance_uuid: uuid }, order: [['id', 'ASC']] });
  }

  async seen(uniqueId: string): Promise<boolean> {
    return (await ProcessedMessageRow.count({ where: { unique_id: uniqueId } })) > 0;
  }

  async record(uniqueId: string, method: string): Promise<void> {
    await ProcessedMessageRow.upsert({ unique_id: uniqueId, method, processed_at: new Date() });
  }

  /** Forgets processed ids older than `maxAgeMs` (redeliveries come within minutes). */
  async pruneMessages(maxAgeMs: number): Promise<number> {
    return ProcessedMessageRow.destroy({ where: { processed_at: { [Op.lt]: new Date(Date.now() - maxAgeMs) } } });
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
