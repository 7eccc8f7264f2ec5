import { imageError } from '../errors.js';
import type { Visibility } from '../store/models.js';
import type { Caller } from './access.js';

/** Set by the service, never by a caller (Glance answers 403 for these; Berth uses its INVALID_INPUT). */
export const READ_ONLY = new Set([
  'status',
  'size',
  'virtual_size',
  'checksum',
  'os_hash_algo',
  'os_hash_value',
  'created_at',
  'updated_at',
  'self',
  'file',
  'schema',
  'locations',
  'direct_url',
  'stores',
  'deleted',
  'deleted_at',
  'docker_digest',
  'docker_index_digest',
  'docker_image_id',
  'berth_import_error',
  'berth_upload_error',
  'berth_import_bytes_done',
  'berth_import_bytes_total',
]);

/**
 * Glance's default image policy, where it differs from "the owner may do anything":
 * - `publicize_image` is admin-only: a project may make its images private, shared or community,
 *   but only an admin makes one public (every project lists public images and hosts pull them
 *   anonymously from the registry endpoint, so a public image speaks for the cloud);
 * - only an admin sets an image's owner to another project, at creation or later (Glance:
 *   "Owner can't be updated by non admin"): otherwise a project could push images into another
 *   project's listing and quota, or disown one;
 * - properties the service records and the nodes trust (Berth's `docker_*` and `berth_*`) are
 *   read-only to projects, as Glance reserves `os_glance_*`. The agent pulls by
 *   `berth_manifest_digest`, the registry endpoint maps names through `docker_image`: a project
 *   writing them could pass its image off as another one.
 */

/** Properties whose names Berth reserves; the service's own (READ_ONLY) are refused to everyone. */
const RESERVED_PREFIXES = ['docker_', 'berth_'];

export function isReservedProperty(key: string): boolean {
  return !READ_ONLY.has(key) && RESERVED_PREFIXES.some((p) => key.startsWith(p));
}

/** 403 unless `caller` may give an image this visibility. */
export function checkVisibility(caller: Caller, visibility: Visibility | null | undefined): void {
  if (visibility === 'public' && !caller.admin) {
    throw imageError('IMAGE_FORBIDDEN', 'You are not authorized to complete publicize_image action: only an admin may make an image public', { visibility });
  }
}

/** 403 unless `caller` may make `owner` the owner of an image (its own project, or any for an admin). */
export function checkOwner(caller: Caller, owner: string | null | undefined): void {
  if (owner !== undefined && owner !== caller.project && !caller.admin) {
    throw imageError('IMAGE_FORBIDDEN', `only an admin may give an image to another project (${String(owner)})`, { owner: owner ?? null });
  }
}

/** Glance's own namespace (Wallaby on): refused to everyone, admins included, on create and update. */
export const GLANCE_RESERVED_PREFIX = 'os_glance';

/**
 * 403 (Glance's answer for reserved attributes) for `os_glance_*` names, and when a non-admin sets
 * or removes a property Berth reserves.
 */
export function checkProperty(caller: Caller, key: string): void {
  if (key.startsWith(GLANCE_RESERVED_PREFIX)) {
    throw imageError('ATTRIBUTE_FORBIDDEN', `Attribute '${key}' is reserved.`, { attribute: key });
  }
  if (isReservedProperty(key) && !caller.admin) {
    throw imageError('ATTRIBUTE_FORBIDDEN', `Attribute '${key}' is reserved: only the image service (or an admin) sets it.`, { attribute: key });
  }
}
