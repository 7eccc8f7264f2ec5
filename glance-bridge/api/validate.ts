import { invalidInput } from '../../common/errors.js';
import { isUuid } from '../../common/koa.js';
import type { NewImage, ListQuery } from '../store/images.js';
import type { Visibility } from '../store/models.js';

// Glance's defaults for [image_format] container_formats and disk_formats.
const CONTAINER_FORMATS = ['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed'];
const DISK_FORMATS = ['ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop'];
const VISIBILITIES: Visibility[] = ['public', 'private', 'shared', 'community'];

/** Set by the service, never by a caller (Glance answers 403 for these; Berth uses its INVALID_INPUT). */
const READ_ONLY = new Set(['status', 'size', 'virtual_size', 'checksum', 'os_hash_algo', 'os_hash_value', 'created_at',
  'updated_at', 'self', 'file', 'schema', 'locations', 'direct_url', 'stores', 'deleted', 'deleted_at',
  'docker_digest', 'docker_index_digest', 'docker_image_id', 'berth_import_error']);

function optString(body: Record<string, unknown>, key: string, max: number, choices?: string[]): string | null | undefined {
  const v = body[key];
  if (v === undefined || v === null) return v;
  if (typeof v !== 'string' || v.length > max) throw invalidInput(`${key} must be a string of at most ${max} characters`, { field: key });
  if (choices && !choices.includes(v)) throw invalidInput(`${key} must be one of ${choices.join(', ')}`, { field: key });
  return v;
}

function optInt(body: Record<string, unknown>, key: string): number | undefined {
  const v = body[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw invalidInput(`${key} must be a non-negative integer`, { field: key });
  return v;
}

/** The body of POST /v2/images, validated into a new image (queued, owned by `owner`). */
export function parseCreateImage(body: unknown, owner: string): NewImage {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalidInput('request body must be a JSON object');
  const b = body as Record<string, unknown>;
  for (const key of Object.keys(b)) if (READ_ONLY.has(key)) throw invalidInput(`attribute ${key} is read-only`, { field: key });
  if (b.id !== undefined && !isUuid(b.id)) throw invalidInput('id must be a lowercase UUID with dashes', { field: 'id' });
  if (b.protected !== undefined && typeof b.protected !== 'boolean') throw invalidInput('protected must be a boolean', { field: 'protected' });
  const tags = b.tags ?? [];
  if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string' && t.length <= 255)) throw invalidInput('tags must be a list of strings', { field: 'tags' });

  const core = new Set(['id', 'name', 'visibility', 'container_format', 'disk_format', 'min_ram', 'min_disk', 'protected', 'tags', 'owner', 'os_hidden']);
  const properties: Record<string, string> = {};
  for (const [key, value] of Object.entries(b)) {
    if (core.has(key)) continue;
    if (key.length > 255 || typeof value !== 'string' || value.length > 65535) throw invalidInput(`property ${key} must be a string`, { field: key });
    properties[key] = value;
  }
  const name = optString(b, 'name', 255);
  const visibility = optString(b, 'visibility', 20, VISIBILITIES) as Visibility | null | undefined;
  const containerFormat = optString(b, 'container_format', 32, CONTAINER_FORMATS);
  const diskFormat = optString(b, 'disk_format', 32, DISK_FORMATS);
  return {
    ...(b.id !== undefined ? { id: b.id as string } : {}),
    name: name ?? null,
    status: 'queued',
    visibility: visibility ?? 'shared',
    container_format: containerFormat ?? null,
    disk_format: diskFormat ?? null,
    min_ram: optInt(b, 'min_ram') ?? 0,
    min_disk: optInt(b, 'min_disk') ?? 0,
    protected: (b.protected as boolean | undefined) ?? false,
    tags: [...new Set(tags as string[])],
    owner: optString(b, 'owner', 255) ?? owner,
    properties,
  };
}

const FILTERS = ['name', 'status', 'container_format', 'disk_format', 'visibility', 'docker_digest'] as const;

/** Query of GET /v2/images: Glance's limit (default 25, at most 1000), marker and equality filters. */
export function parseListQuery(query: Record<string, string | string[] | undefined>): ListQuery {
  const filters: ListQuery['filters'] = {};
  for (const [key, raw] of Object.entries(query)) {
    if (key === 'limit' || key === 'marker') continue;
    if (!(FILTERS as readonly string[]).includes(key)) throw invalidInput(`unsupported query parameter ${key} (supported: limit, marker, ${FILTERS.join(', ')})`, { field: key });
    if (typeof raw !== 'string') throw invalidInput(`${key} may be given once`, { field: key });
    filters[key as (typeof FILTERS)[number]] = raw;
  }
  const limitRaw = query.limit;
  let limit = 25;
  if (limitRaw !== undefined) {
    limit = Number(limitRaw);
    if (typeof limitRaw !== 'string' || !Number.isInteger(limit) || limit < 1) throw invalidInput('limit must be a positive integer', { field: 'limit' });
    limit = Math.min(limit, 1000);
  }
  const marker = query.marker;
  if (marker !== undefined && !isUuid(marker)) throw invalidInput('marker must be an image id', { field: 'marker' });
  return { filters, limit, ...(marker !== undefined ? { marker: marker as string } : {}) };
}
