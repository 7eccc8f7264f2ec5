import type { ImageRecord } from './images.js';

/** Equality filters on columns (docker_digest is a column copied out of the properties). */
export const CORE_FILTERS = ['name', 'status', 'container_format', 'disk_format', 'visibility', 'owner', 'docker_digest'] as const;
export type CoreFilter = (typeof CORE_FILTERS)[number];

/** Glance's sortable attributes (glance/api/v2/images.py, _available_sort_keys). */
export const SORT_KEYS = ['name', 'status', 'container_format', 'disk_format', 'size', 'id', 'created_at', 'updated_at',
  'visibility', 'owner', 'min_ram', 'min_disk', 'protected'] as const;
export type SortKey = (typeof SORT_KEYS)[number];
export interface SortSpec { key: SortKey; dir: 'asc' | 'desc' }

export interface ListQuery {
  filters: Partial<Record<CoreFilter, string>>;
  /** Every one must be on the image. */
  tags?: string[];
  /** Custom properties that must have these values. */
  properties?: Record<string, string>;
  /** `os_hidden=true`: Berth never hides images, so this matches none. */
  hiddenOnly?: boolean;
  sizeMin?: number;
  sizeMax?: number;
  /** Default: created_at desc. `id` is always appended so the order (and `marker`) is total. */
  sort?: SortSpec[];
  limit: number;
  marker?: string;
  /** What the caller may see in a listing (visibility and membership, api/access.ts). */
  accept?: (image: ImageRecord) => boolean;
}

export function matchesQuery(image: ImageRecord, q: ListQuery): boolean {
  if (q.hiddenOnly) return false;
  if (q.accept && !q.accept(image)) return false;
  if (q.tags && !q.tags.every((t) => image.tags.includes(t))) return false;
  for (const [key, value] of Object.entries(q.properties ?? {})) if (image.properties[key] !== value) return false;
  if (q.sizeMin !== undefined && (image.size === null || image.size < q.sizeMin)) return false;
  if (q.sizeMax !== undefined && (image.size === null || image.size > q.sizeMax)) return false;
  return true;
}

type Sortable = string | number | boolean | null;

function valueOf(image: ImageRecord, key: SortKey): Sortable {
  const v = image[key];
  return v instanceof Date ? v.getTime() : v;
}

/** Nulls sort before everything, as in Glance on MySQL. */
function compareValues(a: Sortable, b: Sortable): number {
  if (a === b) return 0;
  if (a === null) return -1;
  if (b === null) return 1;
  return a < b ? -1 : 1;
}

export function compareBy(sort: SortSpec[] = [{ key: 'created_at', dir: 'desc' }]): (a: ImageRecord, b: ImageRecord) => number {
  const keys = sort.some((s) => s.key === 'id') ? sort : [...sort, { key: 'id' as const, dir: sort.at(-1)?.dir ?? 'desc' }];
  return (a, b) => {
    for (const { key, dir } of keys) {
      const c = compareValues(valueOf(a, key), valueOf(b, key));
      if (c !== 0) return dir === 'asc' ? c : -c;
    }
    return 0;
  };
}
