import { DataTypes, Model, type Sequelize } from 'sequelize';

export { PowerState, type TaskState, type VmState } from './vm-states.js';
import type { TaskState, VmState } from './vm-states.js';

export class InstanceRow extends Model {
  declare uuid: string;
  declare display_name: string;
  declare hostname: string;
  declare project_id: string;
  declare user_id: string;
  declare image_ref: string;
  /** Flavor JSON. */
  declare flavor: string;
  declare host: string;
  declare node: string;
  declare vm_state: VmState;
  declare task_state: TaskState | null;
  declare power_state: number;
  declare ip_address: string | null;
  /** The agent InstanceSpec JSON, kept so an interrupted build can be finished after a restart. */
  declare spec: string;
  /** Other nova Instance fields notifications carry (JSON). */
  declare nova: string;
  declare launched_at: Date | null;
  declare terminated_at: Date | null;
  declare deleted_at: Date | null;
  declare deleted: boolean;
  declare created_at: Date;
  declare updated_at: Date;
}

export class InstanceFaultRow extends Model {
  declare id: number;
  declare instance_uuid: string;
  declare code: number;
  declare message: string;
  declare details: string;
  declare created_at: Date;
}

export class InstanceActionRow extends Model {
  declare id: number;
  declare instance_uuid: string;
  declare action: string;
  declare request_id: string | null;
  declare user_id: string | null;
  declare project_id: string | null;
  declare result: 'Success' | 'Error' | null;
  declare message: string | null;
  declare start_time: Date;
  declare finish_time: Date | null;
}

/**
 * nova's Migration statuses (nova/compute/manager.py, resource_tracker.py): a same-host resize goes
 * through pre-migrating … finished, then confirmed or reverted (error when a step fails); an
 * evacuation through pre-migrating (the destination's claim), done (the instance on its new
 * host) and completed (the returning source host removed its leftovers), or failed.
 */
export type MigrationStatus =
  | 'pre-migrating'
  | 'migrating'
  | 'post-migrating'
  | 'finished'
  | 'confirmed'
  | 'reverting'
  | 'reverted'
  | 'error'
  | 'accepted'
  | 'done'
  | 'completed'
  | 'failed';

/** A move of an instance (nova's Migration): for a resize, the flavors on either side and how far it got. */
export class MigrationRow extends Model {
  declare id: number;
  declare uuid: string;
  declare instance_uuid: string;
  declare migration_type: 'resize' | 'migration' | 'evacuation';
  declare source_compute: string;
  declare dest_compute: string;
  declare source_node: string;
  declare dest_node: string;
  /** Flavor JSON. */
  declare old_flavor: string;
  declare new_flavor: string;
  /** The vm_state the instance had when the move began (nova's system_metadata old_vm_state). */
  declare old_vm_state: string;
  declare status: MigrationStatus;
  /** nova's Migration primitive as last seen (nova mode), '' standalone. */
  declare nova: string;
  /** A move between nodes: the image store's image that carried the filesystem ('' otherwise). */
  declare image_id: string;
  /** A move between nodes: the bytes of that image sent through the image store (null otherwise). */
  declare transferred_bytes: number | null;
  declare created_at: Date;
  declare updated_at: Date;
}

export class ProcessedMessageRow extends Model {
  declare unique_id: string;
  declare method: string;
  declare processed_at: Date;
}

const common = { timestamps: true, createdAt: 'created_at', updatedAt: 'updated_at', underscored: true } as const;

export function defineModels(db: Sequelize): void {
  InstanceRow.init(
    {
      uuid: { type: DataTypes.STRING(36), primaryKey: true },
      display_name: DataTypes.STRING,
      hostname: DataTypes.STRING,
      project_id: DataTypes.STRING,
      user_id: DataTypes.STRING,
      image_ref: DataTypes.STRING,
      flavor: DataTypes.TEXT,
      host: DataTypes.STRING,
      node: DataTypes.STRING,
      vm_state: DataTypes.STRING,
      task_state: DataTypes.STRING,
      power_state: DataTypes.INTEGER,
      ip_address: DataTypes.STRING,
      spec: DataTypes.TEXT,
      nova: DataTypes.TEXT,
      launched_at: DataTypes.DATE,
      terminated_at: DataTypes.DATE,
      deleted_at: DataTypes.DATE,
      deleted: DataTypes.BOOLEAN,
    },
    { sequelize: db, tableName: 'instances', ...common },
  );
  InstanceFaultRow.init(
    {
      id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
      instance_uuid: DataTypes.STRING,
      code: DataTypes.INTEGER,
      message: DataTypes.STRING,
      details: DataTypes.TEXT,
    },
    { sequelize: db, tableName: 'instance_faults', ...common, updatedAt: false },
  );
  InstanceActionRow.init(
    {
      id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
      instance_uuid: DataTypes.STRING,
      action: DataTypes.STRING,
      request_id: DataTypes.STRING,
      user_id: DataTypes.STRING,
      project_id: DataTypes.STRING,
      result: DataTypes.STRING,
      message: DataTypes.TEXT,
      start_time: DataTypes.DATE,
      finish_time: DataTypes.DATE,
    },
    { sequelize: db, tableName: 'instance_actions', timestamps: false },
  );
  MigrationRow.init(
    {
      id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
      uuid: DataTypes.STRING(36),
      instance_uuid: DataTypes.STRING(36),
      migration_type: DataTypes.STRING,
      source_compute: DataTypes.STRING,
      dest_compute: DataTypes.STRING,
      source_node: DataTypes.STRING,
      dest_node: DataTypes.STRING,
      old_flavor: DataTypes.TEXT,
      new_flavor: DataTypes.TEXT,
      old_vm_state: DataTypes.STRING,
      status: DataTypes.STRING,
      nova: DataTypes.TEXT,
      image_id: { type: DataTypes.STRING(36), defaultValue: '' },
      transferred_bytes: {
        type: DataTypes.BIGINT,
        allowNull: true,
        // PostgreSQL answers BIGINT as a string.
        get(this: MigrationRow) {
          const v = this.getDataValue('transferred_bytes') as number | string | null;
          return v === null ? null : Number(v);
        },
      },
    },
    { sequelize: db, tableName: 'migrations', ...common },
  );
  ProcessedMessageRow.init(
    {
      unique_id: { type: DataTypes.STRING(64), primaryKey: true },
      method: DataTypes.STRING,
      processed_at: DataTypes.DATE,
    },
    { sequelize: db, tableName: 'processed_messages', timestamps: false },
  );
}
