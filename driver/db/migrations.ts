import { DataTypes, type QueryInterface } from 'sequelize';
import type { Migration } from '../../common/db.js';

/** Versioned schema of the compute driver's database. Never edit a released migration: add one. */
export const migrations: Migration[] = [
  {
    name: '0001-initial',
    async up(qi: QueryInterface) {
      const ts = { type: DataTypes.DATE, allowNull: false };
      await qi.createTable('instances', {
        uuid: { type: DataTypes.STRING(36), primaryKey: true },
        display_name: { type: DataTypes.STRING(255), allowNull: false, defaultValue: '' },
        hostname: { type: DataTypes.STRING(255), allowNull: false, defaultValue: '' },
        project_id: { type: DataTypes.STRING(255), allowNull: false, defaultValue: '' },
        user_id: { type: DataTypes.STRING(255), allowNull: false, defaultValue: '' },
        image_ref: { type: DataTypes.STRING(255), allowNull: false, defaultValue: '' },
        flavor: { type: DataTypes.TEXT, allowNull: false },
        host: { type: DataTypes.STRING(255), allowNull: false },
        node: { type: DataTypes.STRING(255), allowNull: false },
        vm_state: { type: DataTypes.STRING(32), allowNull: false },
        task_state: { type: DataTypes.STRING(32), allowNull: true },
        power_state: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
        ip_address: { type: DataTypes.STRING(64), allowNull: true },
        spec: { type: DataTypes.TEXT, allowNull: false },
        nova: { type: DataTypes.TEXT, allowNull: false },
        launched_at: { type: DataTypes.DATE, allowNull: true },
        terminated_at: { type: DataTypes.DATE, allowNull: true },
        deleted_at: { type: DataTypes.DATE, allowNull: true },
        deleted: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
        created_at: ts,
        updated_at: ts,
      });
      await qi.addIndex('instances', ['host', 'deleted']);
      await qi.createTable('instance_faults', {
        id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
        instance_uuid: { type: DataTypes.STRING(36), allowNull: false },
        code: { type: DataTypes.INTEGER, allowNull: false },
        message: { type: DataTypes.STRING(255), allowNull: false },
        details: { type: DataTypes.TEXT, allowNull: false, defaultValue: '' },
        created_at: ts,
      });
      await qi.addIndex('instance_faults', ['instance_uuid']);
      await qi.createTable('instance_actions', {
        id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
        instance_uuid: { type: DataTypes.STRING(36), allowNull: false },
        action: { type: DataTypes.STRING(64), allowNull: false },
        request_id: { type: DataTypes.STRING(64), allowNull: true },
        user_id: { type: DataTypes.STRING(255), allowNull: true },
        project_id: { type: DataTypes.STRING(255), allowNull: true },
        result: { type: DataTypes.STRING(16), allowNull: true },
        message: { type: DataTypes.TEXT, allowNull: true },
        start_time: ts,
        finish_time: { type: DataTypes.DATE, allowNull: true },
      });
      await qi.addIndex('instance_actions', ['instance_uuid']);
      await qi.createTable('processed_messages', {
        unique_id: { type: DataTypes.STRING(64), primaryKey: true },
        method: { type: DataTypes.STRING(64), allowNull: false },
        processed_at: ts,
      });
      await qi.addIndex('processed_messages', ['processed_at']);
    },
  },
  {
    name: '0002-migrations',
    async up(qi: QueryInterface) {
      const ts = { type: DataTypes.DATE, allowNull: false };
      const str = (n: number) => ({ type: DataTypes.STRING(n), allowNull: false, defaultValue: '' });
      await qi.createTable('migrations', {
        id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
        uuid: { type: DataTypes.STRING(36), allowNull: false, unique: true },
        instance_uuid: { type: DataTypes.STRING(36), allowNull: false },
        migration_type: str(16),
        source_compute: str(255),
        dest_compute: str(255),
        source_node: str(255),
        dest_node: str(255),
        old_flavor: { type: DataTypes.TEXT, allowNull: false },
        new_flavor: { type: DataTypes.TEXT, allowNull: false },
        old_vm_state: str(32),
        status: str(32),
        nova: { type: DataTypes.TEXT, allowNull: false, defaultValue: '' },
        created_at: ts,
        updated_at: ts,
      });
      await qi.addIndex('migrations', ['instance_uuid']);
      await qi.addIndex('migrations', ['dest_compute', 'status']);
    },
  },
  {
    // A move between two nodes: the image that carried the instance's filesystem, and its bytes.
    name: '0003-migration-transfer',
    async up(qi: QueryInterface) {
      await qi.addColumn('migrations', 'image_id', { type: DataTypes.STRING(36), allowNull: false, defaultValue: '' });
      await qi.addColumn('migrations', 'transferred_bytes', { type: DataTypes.BIGINT, allowNull: true });
    },
  },
];
