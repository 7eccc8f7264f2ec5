import type { GlanceImage, ImportProgress } from '../client/types.js';
import type { ImageRecord } from '../store/types.js';
import { STORE_ID } from './discovery.js';

/** Glance prints times without fractions: 2024-05-01T12:00:00Z. */
export const glanceTime = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/**
 * An image in Glance v2's shape: custom properties are top-level keys, beside the core ones.
 * While an import runs, `berth_import_bytes_done`/`_total` tell how far it got (not stored).
 * An image with data names the store it lives in (`stores`), as Glance with multiple stores does.
 */
export function toGlanceImage(image: ImageRecord, progress: ImportProgress | null = null): GlanceImage {
  return {
    ...image.properties,
    id: image.id,
    name: image.name,
    status: image.status,
    visibility: image.visibility,
    container_format: image.container_format,
    disk_format: image.disk_format,
    size: image.size,
    virtual_size: null,
    checksum: image.checksum,
    os_hash_algo: image.os_hash_algo,
    os_hash_value: image.os_hash_value,
    owner: image.owner,
    min_ram: image.min_ram,
    min_disk: image.min_disk,
    protected: image.protected,
    os_hidden: false,
    tags: image.tags,
    created_at: glanceTime(image.created_at),
    updated_at: glanceTime(image.updated_at),
    self: `/v2/images/${image.id}`,
    file: `/v2/images/${image.id}/file`,
    schema: '/v2/schemas/image',
    ...(image.status === 'active' || image.status === 'deactivated' ? { stores: STORE_ID } : {}),
    ...(progress ? { berth_import_bytes_done: progress.bytes_done, berth_import_bytes_total: progress.bytes_total } : {}),
  };
}
