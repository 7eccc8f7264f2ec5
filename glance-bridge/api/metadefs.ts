import type { Router } from '@koa/router';
import type Koa from 'koa';
import { commonError, invalidInput, type BerthError } from '../../common/errors.js';
import type { MetadefCatalog, MetadefNamespace, MetadefObject } from '../metadefs/catalog.js';
import type { Caller } from '../policy/access.js';
import { METADEF_SCHEMAS } from './metadef-schemas.js';

/**
 * Glance's metadata definitions API, read-only: the catalog loaded from `[image_store]
 * metadefs_path` (empty without one, as a Glance whose operator never ran `glance-manage
 * db_load_metadefs`). Answers keep Glance Zed's shapes: summaries in the list, the full namespace
 * with its objects, properties and tags, `?resource_type=` prefixing property names. Writes are
 * 405: the catalog is not kept here.
 */
const missing = (namespace: string): BerthError => commonError('NOT_FOUND', `Metadata definition namespace=${namespace} was not found.`, { namespace });
const missingPart = (what: string, name: string, namespace: string): BerthError =>
  commonError('NOT_FOUND', `Could not find ${what} ${name}`, { namespace, name });

const LIST_DEFAULT = 25;
const LIST_MAX = 1000;
const SORT_KEYS = ['created_at', 'updated_at', 'namespace', 'display_name'] as const;
const NS_SCHEMA = '/v2/schemas/metadefs/namespace';
const OBJECT_SCHEMA = '/v2/schemas/metadefs/object';

export function addMetadefRoutes(router: Router, catalog: MetadefCatalog, callerOf: (ctx: Koa.Context) => Caller): void {
  const stamp = catalog.loadedAt.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const times = { created_at: stamp, updated_at: stamp };
  const visible = (ctx: Koa.Context, ns: MetadefNamespace | undefined): ns is MetadefNamespace => {
    if (!ns) return false;
    const caller = callerOf(ctx);
    return ns.visibility === 'public' || caller.admin || ns.owner === caller.project;
  };
  const namespaceIn = (ctx: Koa.Context): MetadefNamespace => {
    const name = String(ctx.params.namespace);
    const ns = catalog.get(name);
    if (!visible(ctx, ns)) throw missing(name);
    return ns;
  };
  const href = (ns: MetadefNamespace) => `/v2/metadefs/namespaces/${ns.namespace}`;
  const summary = (ns: MetadefNamespace) => ({
    namespace: ns.namespace,
    ...(ns.display_name !== undefined ? { display_name: ns.display_name } : {}),
    ...(ns.description !== undefined ? { description: ns.description } : {}),
    visibility: ns.visibility,
    protected: ns.protected,
    owner: ns.owner,
    ...times,
    ...(ns.resource_type_associations.length ? { resource_type_associations: ns.resource_type_associations.map((a) => ({ ...a, ...times })) } : {}),
    self: href(ns),
    schema: NS_SCHEMA,
  });
  const objectView = (ns: MetadefNamespace, o: MetadefObject, prefix: string) => ({
    ...o,
    properties: prefixed(o.properties, prefix),
    ...(o.required ? { required: o.required.map((r) => `${prefix}${r}`) } : {}),
    ...times,
    self: `${href(ns)}/objects/${o.name}`,
    schema: OBJECT_SCHEMA,
  });

  router.get('/v2/metadefs/namespaces', (ctx) => {
    const q = listQuery(ctx.query);
    let found = catalog.namespaces().filter((ns) => visible(ctx, ns));
    if (q.visibility) found = found.filter((ns) => ns.visibility === q.visibility);
    if (q.resourceTypes) found = found.filter((ns) => ns.resource_type_associations.some((a) => q.resourceTypes!.includes(a.name)));
    found.sort((a, b) => compareBy(a, b, q.sortKey) * (q.sortDir === 'asc' ? 1 : -1) || a.namespace.localeCompare(b.namespace));
    if (q.marker !== undefined) {
      const at = found.findIndex((ns) => ns.namespace === q.marker);
      if (at < 0) throw missing(q.marker);
      found = found.slice(at + 1);
    }
    const page = found.slice(0, q.limit);
    const query = new URLSearchParams(ctx.querystring);
    const first = query.toString();
    const body: Record<string, unknown> = {
      namespaces: page.map(summary),
      schema: '/v2/schemas/metadefs/namespaces',
      first: `/v2/metadefs/namespaces${first ? `?${first}` : ''}`,
    };
    if (page.length > 0 && page.length === q.limit) {
      query.set('marker', page[page.length - 1]!.namespace);
      body.next = `/v2/metadefs/namespaces?${query.toString()}`;
    }
    ctx.body = body;
  });

  router.get('/v2/metadefs/namespaces/:namespace', (ctx) => {
    const ns = namespaceIn(ctx);
    const prefix = prefixFor(ns, ctx.query.resource_type);
    ctx.body = {
      ...summary(ns),
      ...(Object.keys(ns.properties).length ? { properties: prefixed(ns.properties, prefix) } : {}),
      ...(ns.objects.length ? { objects: ns.objects.map((o) => objectView(ns, o, prefix)) } : {}),
      ...(ns.tags.length ? { tags: ns.tags.map((name) => ({ name })) } : {}),
    };
  });
  router.get('/v2/metadefs/namespaces/:namespace/objects', (ctx) => {
    const ns = namespaceIn(ctx);
    // Glance's own link here has no leading slash.
    ctx.body = { objects: ns.objects.map((o) => objectView(ns, o, '')), schema: 'v2/schemas/metadefs/objects' };
  });
  router.get('/v2/metadefs/namespaces/:namespace/objects/:name', (ctx) => {
    const ns = namespaceIn(ctx);
    const o = ns.objects.find((x) => x.name === ctx.params.name);
    if (!o) throw missingPart('metadata definition object', String(ctx.params.name), ns.namespace);
    ctx.body = objectView(ns, o, '');
  });
  router.get('/v2/metadefs/namespaces/:namespace/properties', (ctx) => {
    ctx.body = { properties: namespaceIn(ctx).properties };
  });
  router.get('/v2/metadefs/namespaces/:namespace/properties/:name', (ctx) => {
    const ns = namespaceIn(ctx);
    const name = String(ctx.params.name);
    const schema = Object.hasOwn(ns.properties, name) ? ns.properties[name] : undefined;
    if (!schema) throw missingPart('property', name, ns.namespace);
    ctx.body = { name, ...schema };
  });
  router.get('/v2/metadefs/namespaces/:namespace/tags', (ctx) => {
    ctx.body = { tags: namespaceIn(ctx).tags.map((name) => ({ name })) };
  });
  router.get('/v2/metadefs/namespaces/:namespace/tags/:name', (ctx) => {
    const ns = namespaceIn(ctx);
    const name = String(ctx.params.name);
    if (!ns.tags.includes(name)) throw missingPart('metadata tag', name, ns.namespace);
    ctx.body = { name, ...times };
  });
  router.get('/v2/metadefs/namespaces/:namespace/resource_types', (ctx) => {
    ctx.body = { resource_type_associations: namespaceIn(ctx).resource_type_associations.map((a) => ({ ...a, ...times })) };
  });
  for (const [name, schema] of Object.entries(METADEF_SCHEMAS))
    router.get(`/v2/schemas/metadefs/${name}`, (ctx) => {
      ctx.body = schema;
    });
  router.get('/v2/metadefs/resource_types', (ctx) => {
    ctx.body = { resource_types: catalog.resourceTypes().map((name) => ({ name, ...times })) };
  });
}

interface ListQuery {
  limit: number;
  marker?: string;
  visibility?: string;
  resourceTypes?: string[];
  sortKey: (typeof SORT_KEYS)[number];
  sortDir: 'asc' | 'desc';
}

function listQuery(query: Record<string, string | string[] | undefined>): ListQuery {
  const one = (key: string): string | undefined => {
    const v = query[key];
    return Array.isArray(v) ? v[v.length - 1] : v;
  };
  const limitText = one('limit');
  const limit = limitText === undefined ? LIST_DEFAULT : Number(limitText);
  if (!Number.isInteger(limit) || limit < 0) throw invalidInput('limit param must be an integer', { field: 'limit' });
  if (limit > LIST_MAX) throw invalidInput(`limit param must not be higher than ${LIST_MAX}`, { field: 'limit' });
  const sortKey = one('sort_key') ?? 'created_at';
  if (!(SORT_KEYS as readonly string[]).includes(sortKey))
    throw invalidInput(`Invalid sort key: ${sortKey}. It must be one of the following: ${SORT_KEYS.join(', ')}.`, { field: 'sort_key' });
  const sortDir = one('sort_dir') ?? 'desc';
  if (sortDir !== 'asc' && sortDir !== 'desc') throw invalidInput(`Invalid sort direction: ${sortDir}`, { field: 'sort_dir' });
  const visibility = one('visibility');
  if (visibility !== undefined && visibility !== 'public' && visibility !== 'private')
    throw invalidInput(`Invalid visibility value: ${visibility}`, { field: 'visibility' });
  const types = one('resource_types');
  const marker = one('marker');
  return {
    limit,
    sortKey: sortKey as ListQuery['sortKey'],
    sortDir,
    ...(marker !== undefined ? { marker } : {}),
    ...(visibility !== undefined ? { visibility } : {}),
    ...(types !== undefined
      ? {
          resourceTypes: types
            .split(',')
            .map((t) => t.trim())
            .filter(Boolean),
        }
      : {}),
  };
}

/** Everything was loaded at once, so the dates tie and the name decides. */
function compareBy(a: MetadefNamespace, b: MetadefNamespace, key: ListQuery['sortKey']): number {
  if (key === 'namespace') return a.namespace.localeCompare(b.namespace);
  if (key === 'display_name') return (a.display_name ?? '').localeCompare(b.display_name ?? '');
  return 0;
}

/** The prefix of the namespace's association with `resourceType` (`?resource_type=`), or ''. */
function prefixFor(ns: MetadefNamespace, resourceType: unknown): string {
  if (typeof resourceType !== 'string') return '';
  return ns.resource_type_associations.find((a) => a.name === resourceType)?.prefix ?? '';
}

function prefixed(properties: Record<string, Record<string, unknown>>, prefix: string): Record<string, Record<string, unknown>> {
  if (!prefix) return properties;
  const out: Record<string, Record<string, unknown>> = {};
  for (const [name, schema] of Object.entries(properties))
    Object.defineProperty(out, `${prefix}${name}`, { value: schema, enumerable: true, writable: true, configurable: true });
  return out;
}
