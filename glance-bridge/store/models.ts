import { DataTypes, Model, type InferAttributes, type InferCreationAttributes, type CreationOptional, type Sequelize } from 'sequelize';
import type { ImageStatus } from '../client/types.js';

export type Visibility = 'public' | 'private' | 'shared' | 'community';

export class ImageRow extends Model<InferAttributes<ImageRow>, InferCreationAttributes<ImageRow>> {
  declare id: string;
  declare name: string | null;
  declare status: ImageStatus;
  declare visibility: Visibility;
  declare container_format: string | null;
  declare disk_format: string | null;
  declare size: number | null;
  declare checksum: string | null;
  declare os_hash_algo: string | null;
  declare os_hash_value: string | null;
  declare owner: string | null;
  declare min_ram: number;
  declare min_disk: number;
  declare protected: boolean;
  declare tags: string[];
  declare properties: Record<string, string>;
  declare docker_digest: string | null;
  declare docker_repository: CreationOptional<string | null>;
  declare created_at: CreationOptional<Date>;
  declare updated_at: CreationOptional<Date>;
  declare deleted: CreationOptional<boolean>;
  declare deleted_at: CreationOptional<Date | null>;
}

/**
 * 'file': uploaded data, served as stored (no config or layers). 'manifest': the image manifest
 * the registry endpoint serves for imported images.
 */
export type BlobRole = 'config' | 'layer' | 'file' | 'manifest';

export class ImageBlobRow extends Model<InferAttributes<ImageBlobRow>, InferCreationAttributes<ImageBlobRow>> {
  declare id: CreationOptional<number>;
  declare image_id: string;
  declare role: BlobRole;
  declare position: number;
  declare digest: string;
  declare media_type: string;
  declare size: number;
}

export interface ImageModels {
  Image: typeof ImageRow;
  ImageBlob: typeof ImageBlobRow;
}

/** Binds the models to a database; the tables themselves come from ./migrations.ts. */
export function defineModels(db: Sequelize): ImageModels {
  // Fresh subclasses per database: Model.init binds a class to one Sequelize instance, and tests
  // (or a migration tool) may hold several at once.
  class Image extends ImageRow {}
  class ImageBlob extends ImageBlobRow {}
  Image.init(
    {
      id: { type: DataTypes.STRING(36), primaryKey: true },
      name: DataTypes.STRING(255),
      status: { type: DataTypes.STRING(30), allowNull: false },
      visibility: { type: DataTypes.STRING(20), allowNull: false },
      container_format: DataTypes.STRING(32),
      disk_format: DataTypes.STRING(32),
      size: DataTypes.BIGINT,
      checksum: DataTypes.STRING(32),
      os_hash_algo: DataTypes.STRING(64),
      os_hash_value: DataTypes.STRING(128),
      owner: DataTypes.STRING(255),
      min_ram: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
      min_disk: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
      protected: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
      tags: { type: DataTypes.JSON, allowNull: false },
      properties: { type: DataTypes.JSON, allowNull: false },
      docker_digest: DataTypes.STRING(71),
      docker_repository: DataTypes.STRING(255),
      created_at: DataTypes.DATE,
      updated_at: DataTypes.DATE,
      deleted: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
      deleted_at: DataTypes.DATE,
    },
    { sequelize: db, tableName: 'images', timestamps: true, createdAt: 'created_at', updatedAt: 'updated_at' },
  );

  ImageBlob.init(
    {
      id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
      image_id: { type: DataTypes.STRING(36), allowNull: false },
      role: { type: DataTypes.STRING(10), allowNull: false },
      position: { type: DataTypes.INTEGER, allowNull: false },
      digest: { type: DataTypes.STRING(71), allowNull: false },
      media_type: { type: DataTypes.STRING(255), allowNull: false },
      size: { type: DataTypes.BIGINT, allowNull: false },
    },
    { sequelize: db, tableName: 'image_blobs', timestamps: false },
  );

  return { Image, ImageBlob };
}
