import { Op, literal, type Sequelize, type WhereOptions } from 'sequelize';
import type { MemberStatus } from './members.js';

/**
 * Equality filters on text columns: Glance's (every column of its images table filters by
 * equality; docker_digest is Berth's, a column copied out of the properties).
 */
export const CORE_FILTERS = [
  'name',
  'status',
  'container_format',
  'disk_format',
  'visibility',
  'owner',
  'id',
  'checksum',
  'os_hash_algo',
  'os_hash_value',
  'docker_digest',
] as const;
export type CoreFilter = (typeof CORE_FILTERS)[number];

/** The filters Glance also reads as `in:a,b,"c,d"` (any of) or `eq:a`. */
export const LIST_OPERATOR_FILTERS = ['name', 'id', 'status', 'container_format', 'disk_format'] as const;
export type ListOperatorFilter = (typeof LIST_OPERATOR_FILTERS)[number];

/** Integer columns: `size=N` (equality) and `size_min`/`size_max` (inclusive range), and likewise. */
export const NUMERIC_FILTERS = ['size', 'min_ram', 'min_disk'] as const;
export type NumericFilter = (typeof NUMERIC_FILTERS)[number];

export type TimeOperator = 'gt' | 'gte' | 'lt' | 'lte' | 'eq' | 'neq';
export interface TimeFilter {
  column: 'created_at' | 'updated_at';
  op: TimeOperator;
  at: Date;
}

/** Glance's sortable attributes (glance/api/v2/images.py, _available_sort_keys). */
export const SORT_KEYS = [
  'name',
  'status',
  'container_format',
  'disk_format',
  'size',
  'id',
  'created_at',
  'updated_at',
  'visibility',
  'owner',
  'min_ram',
  'min_disk',
  'protected',
] as const;
export type SortKey = (typeof SORT_KEYS)[number];
export interface SortSpec {
  key: SortKey;
  dir: 'asc' | 'desc';
}

/**
 * Who lists, and what they asked to see: the rules of policy/access.ts listedFor, as SQL. Shared
 * images of other projects only where the caller's membership has `memberStatus`; community images
 * of other projects only with `visibility` community or all.
 */
export interface ListScope {
  project: string;
  admin: boolean;
  visibility: 'public' | 'private' | 'shared' | 'community' | 'all' | undefined;
  memberStatus: MemberStatus | 'all';
}

export interface ListQuery {
  filters: Partial<Record<CoreFilter, string>>;
  /** `name=in:a,b`: the column has one of these values. */
  anyOf?: Partial<Record<ListOperatorFilter, string[]>>;
  /** `size=N`, `min_ram=N`, `min_disk=N`. */
  numbers?: Partial<Record<NumericFilter, number>>;
  /** `min_ram_min`, `min_disk_max`…: inclusive bounds (size's are sizeMin/sizeMax). */
  ranges?: Array<{ column: NumericFilter; op: 'gte' | 'lte'; value: number }>;
  protected?: boolean;
  /** `created_at=gte:2024-01-01T00:00:00Z` and the like. */
  times?: TimeFilter[];
  /** A filter no image can match (`virtual_size`, which Berth never records; a non-numeric `size`). */
  none?: boolean;
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
  /** What the caller may see; none: every image (the store's own callers). */
  scope?: ListScope;
}

const NOTHING = literal('1 = 0');
const EVERYTHING = literal('1 = 1');

/** The caller's scope as a condition (access.ts listedFor, row by row). */
function scopeWhere(db: Sequelize, s: ListScope): WhereOptions {
  const community = s.visibility === 'community' || s.visibility === 'all' ? EVERYTHING : s.visibility === undefined ? { owner: s.project } : NOTHING;
  const statuses = s.memberStatus === 'all' ? '' : ` AND status = ${db.escape(s.memberStatus)}`;
  const member = literal(`(SELECT image_id FROM image_members WHERE member = ${db.escape(s.project)}${statuses})`);
  const others: WhereOptions[] = s.admin ? [EVERYTHING] : [{ owner: s.project }, { visibility: 'public' }, { visibility: 'shared', id: { [Op.in]: member } }];
  return {
    [Op.or]: [{ [Op.and]: [{ visibility: 'community' }, community] }, { [Op.and]: [{ visibility: { [Op.ne]: 'community' } }, { [Op.or]: others }] }],
  };
}

/** Tag and custom-property filters in each dialect's JSON functions (the columns are JSON text). */
function jsonWhere(db: Sequelize, q: ListQuery): WhereOptions[] {
  const pg = db.getDialect() === 'postgres';
  const out: WhereOptions[] = [];
  for (const tag of q.tags ?? []) {
    out.push(
      literal(
        pg
          ? `EXISTS (SELECT 1 FROM json_array_elements_text("tags") AS t(v) WHERE t.v = ${db.escape(tag)})`
          : `EXISTS (SELECT 1 FROM json_each("tags") WHERE json_each.value = ${db.escape(tag)})`,
      ),
    );
  }
  for (const [key, value] of Object.entries(q.properties ?? {})) {
    out.push(
      literal(
        pg
          ? `("properties" ->> ${db.escape(key)}) = ${db.escape(value)}`
          : `EXISTS (SELECT 1 FROM json_each("properties") WHERE json_each.key = ${db.escape(key)} AND json_each.type = 'text' AND json_each.value = ${db.escape(value)})`,
      ),
    );
  }
  return out;
}

const TIME_OPS = { gt: Op.gt, gte: Op.gte, lt: Op.lt, lte: Op.lte, eq: Op.eq, neq: Op.ne } as const;

/** Everything but the marker: live images matching the filters the caller may see. */
export function listWhere(db: Sequelize, q: ListQuery): WhereOptions {
  if (q.hiddenOnly || q.none) return NOTHING;
  const and: WhereOptions[] = [{ deleted: false }];
  for (const [key, value] of Object.entries(q.filters)) if (value !== undefined) and.push({ [key]: value });
  for (const [key, values] of Object.entries(q.anyOf ?? {})) if (values) and.push({ [key]: { [Op.in]: values } });
  for (const [key, value] of Object.entries(q.numbers ?? {})) if (value !== undefined) and.push({ [key]: value });
  for (const r of q.ranges ?? []) and.push({ [r.column]: { [r.op === 'gte' ? Op.gte : Op.lte]: r.value } });
  if (q.protected !== undefined) and.push({ protected: q.protected });
  for (const t of q.times ?? []) and.push({ [t.column]: { [TIME_OPS[t.op]]: t.at } });
  if (q.sizeMin !== undefined) and.push({ size: { [Op.gte]: q.sizeMin } });
  if (q.sizeMax !== undefined) and.push({ size: { [Op.lte]: q.sizeMax } });
  and.push(...jsonWhere(db, q));
  if (q.scope) and.push(scopeWhere(db, q.scope));
  return { [Op.and]: and };
}

/** The sort keys, `id` last so the order is total. */
function sortKeys(sort: SortSpec[] = [{ key: 'created_at', dir: 'desc' }]): SortSpec[] {
  return sort.some((s) => s.key === 'id') ? sort : [...sort, { key: 'id', dir: sort.at(-1)?.dir ?? 'desc' }];
}

/** ORDER BY: nulls sort before everything ascending (as Glance on MySQL), so after everything descending. */
export function listOrder(sort?: SortSpec[]): Array<[string, string]> {
  return sortKeys(sort).map(({ key, dir }) => [key, dir === 'asc' ? 'ASC NULLS FIRST' : 'DESC NULLS LAST']);
}

type Value = string | number | boolean | Date | null;

/**
 * Rows after the marker row `at` in that order (keyset pagination): strictly after on the first
 * key, or equal on it and after on the rest. Compared in SQL, so the database's collation decides
 * both the order and the page boundary.
 */
export function afterMarker(sort: SortSpec[] | undefined, at: Record<string, Value>): WhereOptions {
  const keys = sortKeys(sort);
  const after = (i: number): WhereOptions => {
    const { key, dir } = keys[i]!;
    const v = at[key] ?? null;
    const strictly: WhereOptions =
      dir === 'asc'
        ? v === null
          ? { [key]: { [Op.not]: null } }
          : { [key]: { [Op.gt]: v } }
        : v === null
          ? NOTHING
          : { [Op.or]: [{ [key]: { [Op.lt]: v } }, { [key]: { [Op.is]: null } }] };
    if (i === keys.length - 1) return strictly;
    const equal: WhereOptions = v === null ? { [key]: { [Op.is]: null } } : { [key]: v };
    return { [Op.or]: [strictly, { [Op.and]: [equal, after(i + 1)] }] };
  };
  return after(0);
}
