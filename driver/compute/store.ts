import { Op, type Sequelize } from 'sequelize';
import { InstanceActionRow, InstanceFaultRow, InstanceRow, ProcessedMessageRow, type TaskState, type VmState } from '../db/models.js';
import type { MessageLog } from '../rpc/server.js';

export interface NewInstance {
  uuid: string; display_name: string; hostname: string; project_id: string; user_id: string; image_ref: string;
  flavor: unknown; host: string; node: string; spec: unknown; nova: unknown;
}

export type InstanceChanges = Partial<Pick<InstanceRow, 'vm_state' | 'task_state' | 'power_state' | 'ip_address' | 'launched_at' | 'terminated_at' | 'deleted_at' | 'deleted'>>;

/** The driver's records: instances, their faults and actions, and processed message ids. */
export class InstanceStore implements MessageLog {
  constructor(private readonly db: Sequelize) {}

  get(uuid: string): Promise<InstanceRow | null> {
    return InstanceRow.findByPk(uuid);
  }

  listActive(host: string): Promise<InstanceRow[]> {
    return InstanceRow.findAll({ where: { host, deleted: false }, order: [['created_at', 'ASC']] });
  }

  listAll(host: string, includeDeleted = false): Promise<InstanceRow[]> {
    return InstanceRow.findAll({ where: includeDeleted ? { host } : { host, deleted: false }, order: [['created_at', 'ASC']] });
  }

  /** Records a new building instance; returns the existing row instead if the uuid is known. */
  async createBuilding(i: NewInstance): Promise<{ row: InstanceRow; created: boolean }> {
    const [row, created] = await InstanceRow.findOrCreate({
      where: { uuid: i.uuid },
      defaults: {
        ...i, flavor: JSON.stringify(i.flavor), spec: JSON.stringify(i.spec), nova: JSON.stringify(i.nova),
        vm_state: 'building' satisfies VmState, task_state: 'spawning' satisfies TaskState, power_state: 0, deleted: false,
      },
    });
    return { row, created };
  }

  /**
   * Applies changes only if the row still has `expectedTask` (nova's expected_task_state guard),
   * so two operations on one instance cannot both win.
   */
  async update(row: InstanceRow, changes: InstanceChanges, expectedTask?: TaskState | null): Promise<boolean> {
    const where: Record<string, unknown> = { uuid: row.uuid };
    if (expectedTask !== undefined) where.task_state = expectedTask;
    const [n] = await InstanceRow.update(changes, { where });
    if (n === 1) await row.reload();
    return n === 1;
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

  async startAction(uuid: string, action: string, ctx: { request_id?: string; user_id?: string | null; project_id?: string | null }): Promise<InstanceActionRow> {
    return InstanceActionRow.create({
      instance_uuid: uuid, action, request_id: ctx.request_id ?? null, user_id: ctx.user_id ?? null, project_id: ctx.project_id ?? null, start_time: new Date(),
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

  close(): Promise<void> { return this.db.close(); }
}
