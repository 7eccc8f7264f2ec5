/** The image repository's types (images.ts implements it), apart from its Sequelize code so their users need not load it. */
import type { GlanceImage } from '../client/types.js';
import type { Visibility } from './models.js';

/**
 * An image as the store knows it: Glance's core attributes (the API view, views.ts, turns it into
 * Glance's shape), with dates as dates and custom properties kept apart.
 */
type CoreAttribute =
  | 'id'
  | 'name'
  | 'status'
  | 'container_format'
  | 'disk_format'
  | 'size'
  | 'checksum'
  | 'os_hash_algo'
  | 'os_hash_value'
  | 'owner'
  | 'min_ram'
  | 'min_disk'
  | 'protected'
  | 'tags';
export type ImageRecord = Pick<GlanceImage, CoreAttribute> & {
  visibility: Visibility;
  properties: Record<string, string>;
  created_at: Date;
  updated_at: Date;
};

export type NewImage = Partial<Omit<ImageRecord, 'created_at' | 'updated_at'>>;
export type ImagePatch = Partial<
  Pick<
    ImageRecord,
    | 'name'
    | 'container_format'
    | 'disk_format'
    | 'size'
    | 'checksum'
    | 'os_hash_algo'
    | 'os_hash_value'
    | 'properties'
    | 'visibility'
    | 'tags'
    | 'min_ram'
    | 'min_disk'
    | 'protected'
    | 'owner'
  >
>;

export interface BlobEntry {
  digest: string;
  media_type: string;
  size: number;
}
export interface ImageBlobs {
  config: BlobEntry;
  layers: BlobEntry[];
}

export type { ListQuery } from './listing.js';
