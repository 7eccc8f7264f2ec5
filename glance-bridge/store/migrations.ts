import { DataTypes } from 'sequelize';
import type { Migration } from '../../common/db.js';
import { repositoryOf } from './repository.js';

/** Versioned schema of the image store; applied in order, recorded in `image_store_migrations`. */
export const MIGRATIONS_TABLE = 'image_store_migrations';

export const migrations: Migration[] = [
  {
    name: '0001-images-and-blobs',
    up: async (qi) => {
      await qi.createTable('images', {
        id: { type: DataTypes.STRING(36), primaryKey: true },
        name: { type: DataTypes.STRING(255), allowNull: true },
        status: { type: DataTypes.STRING(30), allowNull: false },
        visibility: { type: DataTypes.STRING(20), allowNull: false },
        container_format: { type: DataTypes.STRING(32), allowNull: true },
        disk_format: { type: DataTypes.STRING(32), allowNull: true },
        size: { type: DataTypes.BIGINT, allowNull: true },
        checksum: { type: DataTypes.STRING(32), allowNull: true },
        os_hash_algo: { type: DataTypes.STRING(64), allowNull: true },
        os_hash_value: { type: DataTypes.STRING(128), allowNull: true },
        owner: { type: DataTypes.STRING(255), allowNull: true },
        min_ram: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
        min_disk: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
        protected: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
        tags: { type: DataTypes.JSON, allowNull: false },
        properties: { type: DataTypes.JSON, allowNull: false },
        // Copied out of `properties` so lookups by content need no JSON query.
        docker_digest: { type: DataTypes.STRING(71), allowNull: true },
        created_at: { type: DataTypes.DATE, allowNull: false },
        updated_at: { type: DataTypes.DATE, allowNull: false },
        deleted: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
        deleted_at: { type: DataTypes.DATE, allowNull: true },
      });
      await qi.addIndex('images', ['docker_digest', 'status'], { name: 'images_docker_digest' });
      await qi.addIndex('images', ['deleted', 'created_at'], { name: 'images_listing' });
      await qi.createTable('image_blobs', {
        id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
        image_id: { type: DataTypes.STRING(36), allowNull: false, references: { model: 'images', key: 'id' }, onDelete: 'CASCADE' },
        role: { type: DataTypes.STRING(10), allowNull: false },
        position: { type: DataTypes.INTEGER, allowNull: false },
        digest: { type: DataTypes.STRING(71), allowNull: false },
        media_type: { type: DataTypes.STRING(255), allowNull: false },
        size: { type: DataTypes.BIGINT, allowNull: false },
      });
      await qi.addIndex('image_blobs', ['image_id', 'role', 'position'], { unique: true, name: 'image_blobs_order' });
      await qi.addIndex('image_blobs', ['digest'], { name: 'image_blobs_digest' });
    },
    down: async (qi) => {
      await qi.dropTable('image_blobs');
      await qi.dropTable('images');
    },
  },
  {
    name: '0002-image-members',
    up: async (qi) => {
      await qi.createTable('image_members', {
        id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
        image_id: { type: DataTypes.STRING(36), allowNull: false, references: { model: 'images', key: 'id' }, onDelete: 'CASCADE' },
        member: { type: DataTypes.STRING(255), allowNull: false },
        status: { type: DataTypes.STRING(20), allowNull: false },
        created_at: { type: DataTypes.DATE, allowNull: false },
        updated_at: { type: DataTypes.DATE, allowNull: false },
      });
      await qi.addIndex('image_members', ['image_id', 'member'], { unique: true, name: 'image_members_pair' });
      await qi.addIndex('image_members', ['member'], { name: 'image_members_member' });
    },
    down: async (qi) => {
      await qi.dropTable('image_members');
    },
  },
  {
    // Listings and registry name lookups filter in SQL (listing.ts): indexes for the columns they
    // filter on, and the source repository as a column so a name needs no JSON scan.
    name: '0003-listing-indexes',
    up: async (qi) => {
      await qi.addColumn('images', 'docker_repository', { type: DataTypes.STRING(255), allowNull: true });
      const rows = (await qi.sequelize.query('SELECT id, properties FROM images WHERE deleted = :no', {
        type: 'SELECT',
        replacements: { no: false },
      })) as Array<{ id: string; properties: unknown }>;
      for (const row of rows) {
        const properties = (typeof row.properties === 'string' ? JSON.parse(row.properties) : (row.properties ?? {})) as Record<string, string>;
        const repository = repositoryOf(properties);
        if (repository) await qi.bulkUpdate('images', { docker_repository: repository }, { id: row.id });
      }
      await qi.addIndex('images', ['docker_repository', 'status', 'deleted'], { name: 'images_docker_repository' });
      await qi.addIndex('images', ['owner', 'deleted', 'created_at'], { name: 'images_owner' });
      await qi.addIndex('images', ['visibility', 'deleted', 'created_at'], { name: 'images_visibility' });
      await qi.addIndex('images', ['status', 'deleted'], { name: 'images_status' });
      await qi.addIndex('image_members', ['member', 'status'], { name: 'image_members_member_status' });
    },
    down: async (qi) => {
      for (const [table, index] of [
        ['images', 'images_docker_repository'],
        ['images', 'images_owner'],
        ['images', 'images_visibility'],
        ['images', 'images_status'],
        ['image_members', 'image_members_member_status'],
      ] as const) {
        await qi.removeIndex(table, index);
      }
      await qi.removeColumn('images', 'docker_repository');
    },
  },
];
