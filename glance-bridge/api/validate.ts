import { invalidInput } from '../../common/errors.js';
import { isUuid } from '../../common/koa.js';
import { READ_ONLY } from '../policy/glance-policy.js';
import type { NewImage } from '../store/types.js';
import {
  CORE_FILTERS,
  LIST_OPERATOR_FILTERS,
  NUMERIC_FILTERS,
  SORT_KEYS,
  type CoreFilter,
  type ListOperatorFilter,
  type ListQuery,
  type NumericFilter,
  type SortKey,
  type SortSpec,
  type TimeFilter,
  type TimeOperator,
} from '../store/listing.js';
import type { Visibility } from '../store/models.js';

// Glance's defaults for [image_format] container_formats and disk_formats.
export const CONTAINER_FORMATS = ['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed'];
export const DISK_FORMATS = ['ami', 'ari', 'aki', 'vhd', 'vhdx', 'vmdk', 'raw', 'qcow2', 'vdi', 'iso', 'ploop'];
export const VISIBILITIES: Visibility[] = ['public', 'private', 'shared', 'community'];

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
  if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string' && t.length <= 255))
    throw invalidInput('tags must be a list of strings', { field: 'tags' });

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

type Query = Record<string, string | string[] | undefined>;

const listOf = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

function sortKey(raw: string): SortKey {
  if (!(SORT_KEYS as readonly string[]).includes(raw)) throw invalidInput(`sort key ${raw} is not one of ${SORT_KEYS.join(', ')}`, { field: 'sort_key' });
  return raw as SortKey;
}

function sortDir(raw: string | undefined): 'asc' | 'desc' {
  if (raw === undefined) return 'desc';
  if (raw !== 'asc' && raw !== 'desc') throw invalidInput(`sort direction ${raw} must be asc or desc`, { field: 'sort_dir' });
  return raw;
}

/** `sort=name:asc,created_at` or the older `sort_key=…&sort_dir=…` pairs; not both (Glance refuses the mix too). */
function parseSort(query: Query): SortSpec[] | undefined {
  const keys = listOf(query.sort_key);
  const dirs = listOf(query.sort_dir);
  if (query.sort !== undefined) {
    if (keys.length || dirs.length) throw invalidInput('sort cannot be combined with sort_key or sort_dir', { field: 'sort' });
    return listOf(query.sort)
      .join(',')
      .split(',')
      .filter(Boolean)
      .map((part) => {
        const [key, dir, ...extra] = part.split(':');
        if (extra.length) throw invalidInput(`bad sort item ${part}`, { field: 'sort' });
        return { key: sortKey(key!.trim()), dir: sortDir(dir?.trim()) };
      });
  }
  if (!keys.length) {
    if (dirs.length > 1) throw invalidInput('one sort_dir without sort_key', { field: 'sort_dir' });
    return dirs.length ? [{ key: 'created_at', dir: sortDir(dirs[0]) }] : undefined;
  }
  if (dirs.length > 1 && dirs.length !== keys.length) throw invalidInput('give one sort_dir, or one per sort_key', { field: 'sort_dir' });
  return keys.map((k, i) => ({ key: sortKey(k), dir: sortDir(dirs.length > 1 ? dirs[i] : dirs[0]) }));
}

/** A range bound: any integer, as Glance's int(); anything else is its 400. */
function rangeBound(raw: string, field: string): number {
  if (!/^\s*[-+]?\d+\s*$/.test(raw) || !Number.isSafeInteger(Number(raw)))
    throw invalidInput('Unable to filter on a range with a non-numeric value.', { field });
  return Number(raw);
}

/** Glance's `in:`/`eq:` prefix; anything else (names like `busybox:latest` have colons) is the whole value. */
function listOperator(raw: string): { op: 'in' | 'eq'; value: string } {
  const m = /^(in|eq):(.*)$/s.exec(raw);
  return m ? { op: m[1] as 'in' | 'eq', value: m[2]! } : { op: 'eq', value: raw };
}

/** `a,b,"c,d"`: comma-separated, double quotes around values with commas (the API-WG's `in:`). */
function splitInValues(raw: string, field: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)",?|([^,"]+),?|,/gy;
  let m: RegExpExecArray | null;
  while (re.lastIndex < raw.length && (m = re.exec(raw)) !== null) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] ?? ''));
  if (re.lastIndex < raw.length) throw invalidInput(`Invalid filter value ${raw}. The quote is not closed.`, { field });
  return out;
}

const TIME_OPERATORS: readonly TimeOperator[] = ['gt', 'gte', 'lt', 'lte', 'eq', 'neq'];
const ISO_8601 = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** `created_at=gte:2024-05-01T12:00:00Z` (op defaults to eq), as Glance's split_filter_op reads it. */
function timeFilter(column: 'created_at' | 'updated_at', raw: string): TimeFilter {
  let op: TimeOperator = 'eq';
  let value = raw;
  const m = /^([a-z]+):(.*)$/s.exec(raw);
  if (m && !ISO_8601.test(raw)) {
    if (!(TIME_OPERATORS as readonly string[]).includes(m[1]!)) throw invalidInput(`Unable to filter on a unknown operator '${m[1]}'.`, { field: column });
    op = m[1] as TimeOperator;
    value = m[2]!;
  }
  const at = new Date(value);
  if (!ISO_8601.test(value) || Number.isNaN(at.getTime()))
    throw invalidInput(`Bad "${column}" query filter format. Use ISO 8601 DateTime notation.`, { field: column });
  return { column, op, at };
}

function trueOrFalse(raw: string, field: string): boolean {
  if (raw !== 'true' && raw !== 'false') throw invalidInput(`Invalid value '${raw}' for '${field}' filter. Valid values are 'true' or 'false'.`, { field });
  return raw === 'true';
}

const CONTROL = new Set(['limit', 'marker', 'sort', 'sort_key', 'sort_dir', 'tag', 'member_status', 'os_hidden']);
const INTEGER = /^\s*[-+]?\d+\s*$/;

/**
 * Query of GET /v2/images, as Glance reads it: limit (default 25, at most 1000), marker, sorting,
 * `tag` (repeatable, all must match), and filters on the columns of Glance's images table: text
 * equality (name, status, formats, visibility, owner, id, checksum, os_hash_*), `in:`/`eq:` on
 * name, id, status and the formats, integer equality and `_min`/`_max` ranges on size, min_ram and
 * min_disk, protected, created_at/updated_at with comparison operators; virtual_size, which Berth
 * never records, matches nothing. Any other parameter is a custom property filter.
 */
export function parseListQuery(query: Query): ListQuery {
  const filters: ListQuery['filters'] = {};
  const anyOf: NonNullable<ListQuery['anyOf']> = {};
  const numbers: NonNullable<ListQuery['numbers']> = {};
  const ranges: NonNullable<ListQuery['ranges']> = [];
  const times: TimeFilter[] = [];
  const properties: Record<string, string> = {};
  let none = false;
  let prot: boolean | undefined;
  let sizeMin: number | undefined;
  let sizeMax: number | undefined;
  for (const [key, raw] of Object.entries(query)) {
    if (CONTROL.has(key)) continue;
    if (typeof raw !== 'string') throw invalidInput(`${key} may be given once`, { field: key });
    const range = /^(size|min_ram|min_disk|virtual_size)_(min|max)$/.exec(key);
    if (key === 'changes-since') throw invalidInput('The "changes-since" filter is no longer available on v2.', { field: key });
    if (range) {
      const value = rangeBound(raw, key);
      const [, column, end] = range as unknown as [string, NumericFilter | 'virtual_size', 'min' | 'max'];
      if (column === 'virtual_size') none = true;
      else if (column === 'size') {
        if (end === 'min') sizeMin = value;
        else sizeMax = value;
      } else ranges.push({ column, op: end === 'min' ? 'gte' : 'lte', value });
    } else if ((NUMERIC_FILTERS as readonly string[]).includes(key)) {
      // Glance compares the column with the text as it is: a value that is no integer matches nothing.
      if (INTEGER.test(raw) && Number.isSafeInteger(Number(raw))) numbers[key as NumericFilter] = Number(raw);
      else none = true;
    } else if (key === 'virtual_size') {
      none = true;
    } else if (key === 'protected') {
      prot = trueOrFalse(raw, key);
    } else if (key === 'created_at' || key === 'updated_at') {
      times.push(timeFilter(key, raw));
    } else if ((CORE_FILTERS as readonly string[]).includes(key)) {
      if (key === 'visibility' && raw === 'all') continue;
      if (key === 'visibility' && !(VISIBILITIES as string[]).includes(raw))
        throw invalidInput(`visibility must be all or one of ${VISIBILITIES.join(', ')}`, { field: key });
      if ((LIST_OPERATOR_FILTERS as readonly string[]).includes(key)) {
        const { op, value } = listOperator(raw);
        if (op === 'in') anyOf[key as ListOperatorFilter] = splitInValues(value, key);
        else filters[key as CoreFilter] = value;
      } else {
        filters[key as CoreFilter] = raw;
      }
    } else {
      properties[key] = raw;
    }
  }
  if (query.os_hidden !== undefined) trueOrFalse(String(query.os_hidden), 'os_hidden');
  const limitRaw = query.limit;
  let limit = 25;
  if (limitRaw !== undefined) {
    limit = Number(limitRaw);
    if (typeof limitRaw !== 'string' || !Number.isInteger(limit) || limit < 0) throw invalidInput('limit must be a non-negative integer', { field: 'limit' });
    limit = Math.min(limit, 1000);
  }
  const marker = query.marker;
  if (marker !== undefined && !isUuid(marker)) throw invalidInput('marker must be an image id', { field: 'marker' });
  const sort = parseSort(query);
  return {
    filters,
    limit,
    properties,
    ...(Object.keys(anyOf).length ? { anyOf } : {}),
    ...(Object.keys(numbers).length ? { numbers } : {}),
    ...(ranges.length ? { ranges } : {}),
    ...(times.length ? { times } : {}),
    ...(prot !== undefined ? { protected: prot } : {}),
    ...(none ? { none } : {}),
    tags: listOf(query.tag),
    ...(query.os_hidden === 'true' ? { hiddenOnly: true } : {}),
    ...(sort ? { sort } : {}),
    ...(sizeMin !== undefined ? { sizeMin } : {}),
    ...(sizeMax !== undefined ? { sizeMax } : {}),
    ...(marker !== undefined ? { marker: marker as string } : {}),
  };
}
