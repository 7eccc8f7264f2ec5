import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Glance's metadata definitions catalog (namespaces of properties, objects and tags that Horizon
 * and flavor/image tooling offer), read from JSON files in Glance's own format: the files Glance
 * ships in /etc/glance/metadefs, which `glance-manage db_load_metadefs` loads. The catalog is
 * read once at start-up and served read-only.
 */
export interface ResourceTypeAssociation {
  name: string;
  prefix?: string;
  properties_target?: string;
}
export interface MetadefObject {
  name: string;
  description?: string;
  required?: string[];
  properties: Record<string, Record<string, unknown>>;
}
export interface MetadefNamespace {
  namespace: string;
  display_name?: string;
  description?: string;
  visibility: 'public' | 'private';
  protected: boolean;
  owner: string;
  resource_type_associations: ResourceTypeAssociation[];
  properties: Record<string, Record<string, unknown>>;
  objects: MetadefObject[];
  tags: string[];
}

/** A definitions file that is not what Glance would load; names the file and what is wrong. */
export class MetadefFileError extends Error {
  readonly code = 'CONFIG_INVALID';
}

export class MetadefCatalog {
  private readonly byName: Map<string, MetadefNamespace>;

  /** `loadedAt`: the created_at and updated_at of everything, as Glance stamps a load. */
  constructor(
    namespaces: MetadefNamespace[] = [],
    readonly loadedAt = new Date(),
  ) {
    this.byName = new Map(namespaces.map((n) => [n.namespace, n]));
  }

  /**
   * Every `*.json` file of `dir`, in name order. `owner`: the owner of namespaces that name none
   * (Glance's loader uses its admin). Throws MetadefFileError naming the file at the first problem.
   */
  static loadDir(dir: string, owner: string): MetadefCatalog {
    let names: string[];
    try {
      names = readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .sort();
    } catch (err) {
      throw new MetadefFileError(`[image_store] metadefs_path ${dir}: cannot read the folder (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    const namespaces: MetadefNamespace[] = [];
    for (const name of names) {
      const file = join(dir, name);
      let raw: unknown;
      try {
        raw = JSON.parse(readFileSync(file, 'utf8'));
      } catch (err) {
        throw new MetadefFileError(`${file}: not a JSON metadata definitions file (${(err as Error).message})`);
      }
      const ns = parseNamespace(raw, owner, file);
      if (namespaces.some((n) => n.namespace === ns.namespace)) throw new MetadefFileError(`${file}: namespace ${ns.namespace} is defined twice in ${dir}`);
      namespaces.push(ns);
    }
    return new MetadefCatalog(namespaces);
  }

  get size(): number {
    return this.byName.size;
  }

  namespaces(): MetadefNamespace[] {
    return [...this.byName.values()];
  }

  get(namespace: string): MetadefNamespace | undefined {
    return this.byName.get(namespace);
  }

  /** The resource types some namespace is associated with, each once. */
  resourceTypes(): string[] {
    return [...new Set(this.namespaces().flatMap((n) => n.resource_type_associations.map((a) => a.name)))].sort();
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** One file's namespace, checked as Glance's schema checks it (the fields Glance stores). */
export function parseNamespace(raw: unknown, owner: string, file: string): MetadefNamespace {
  const fail = (what: string): never => {
    throw new MetadefFileError(`${file}: ${what}`);
  };
  if (!isObject(raw)) return fail('not a JSON object');
  const text = (key: string, max: number): string | undefined => {
    const v = raw[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || v.length > max) return fail(`${key} must be a string of at most ${max} characters`);
    return v;
  };
  const namespace = text('namespace', 80);
  if (!namespace) return fail('namespace is missing');
  const visibility = raw.visibility ?? 'private';
  if (visibility !== 'public' && visibility !== 'private') fail('visibility must be public or private');
  if (raw.protected !== undefined && typeof raw.protected !== 'boolean') fail('protected must be true or false');
  const properties = schemaMap(raw.properties, 'properties', fail);
  const objects = list(raw.objects, 'objects', fail).map((o, i) => {
    if (!isObject(o) || typeof o.name !== 'string' || o.name === '') return fail(`objects[${i}] needs a name`);
    if (o.required !== undefined && !(Array.isArray(o.required) && o.required.every((r) => typeof r === 'string')))
      fail(`objects[${i}].required must be a list of property names`);
    return {
      name: o.name,
      ...(typeof o.description === 'string' ? { description: o.description } : {}),
      ...(o.required !== undefined ? { required: o.required as string[] } : {}),
      properties: schemaMap(o.properties, `objects[${i}].properties`, fail),
    };
  });
  const tags = list(raw.tags, 'tags', fail).map((t, i) =>
    isObject(t) && typeof t.name === 'string' && t.name !== '' ? t.name : fail(`tags[${i}] needs a name`),
  );
  const associations = list(raw.resource_type_associations, 'resource_type_associations', fail).map((a, i) => {
    if (!isObject(a) || typeof a.name !== 'string' || a.name === '') return fail(`resource_type_associations[${i}] needs a name`);
    for (const k of ['prefix', 'properties_target'] as const)
      if (a[k] !== undefined && typeof a[k] !== 'string') fail(`resource_type_associations[${i}].${k} must be a string`);
    return {
      name: a.name,
      ...(typeof a.prefix === 'string' ? { prefix: a.prefix } : {}),
      ...(typeof a.properties_target === 'string' ? { properties_target: a.properties_target } : {}),
    };
  });
  const display = text('display_name', 80);
  const description = text('description', 500);
  return {
    namespace,
    visibility: visibility as 'public' | 'private',
    protected: raw.protected === true,
    owner: text('owner', 255) ?? owner,
    ...(display !== undefined ? { display_name: display } : {}),
    ...(description !== undefined ? { description } : {}),
    resource_type_associations: associations,
    properties,
    objects,
    tags,
  };
}

function list(v: unknown, key: string, fail: (what: string) => never): unknown[] {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : fail(`${key} must be a list`);
}

function schemaMap(v: unknown, key: string, fail: (what: string) => never): Record<string, Record<string, unknown>> {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) return fail(`${key} must be an object of property definitions`);
  for (const [name, schema] of Object.entries(v)) if (!isObject(schema)) fail(`${key}.${name} must be an object`);
  return v as Record<string, Record<string, unknown>>;
}
