import { invalidInput, type BerthError } from '../../common/errors.js';
import { imageError } from '../errors.js';
import type { ImagePatch, ImageRecord } from '../store/types.js';
import type { Visibility } from '../store/models.js';
import type { Caller } from '../policy/access.js';
import { checkProperty, checkVisibility } from '../policy/glance-policy.js';
import { READ_ONLY } from '../policy/glance-policy.js';
import { parseCreateImage } from './validate.js';

/**
 * PATCH /v2/images/{id} with `application/openstack-images-v2.1-json-patch`: a list of
 * `{"op": "add"|"replace"|"remove", "path": "/attr", "value"}` (Glance's subset of RFC 6902), or
 * with the older `application/openstack-images-v2.0-json-patch`, whose items name the op as their
 * key: `{"replace": "/attr", "value"}`, `{"add": …}`, `{"remove": "/attr"}`.
 * Glance's answers are kept: read-only attributes, reserved `os_glance_*` names, `locations` and
 * removing a base attribute are 403, replacing or removing a custom property that is not there is
 * 409, bad values are 400. The ops are applied to a copy and the result is validated like a
 * create body, so a patch can never produce an image that POST would have refused.
 */

export const JSON_PATCH_TYPE = 'application/openstack-images-v2.1-json-patch';
export const JSON_PATCH_V20_TYPE = 'application/openstack-images-v2.0-json-patch';
export type PatchDialect = 'v2.0' | 'v2.1';

/** The dialect of a PATCH content type, or undefined when it is neither. */
export function patchDialect(contentType: string): PatchDialect | undefined {
  const type = contentType.split(';')[0]!.trim().toLowerCase();
  return type === JSON_PATCH_TYPE ? 'v2.1' : type === JSON_PATCH_V20_TYPE ? 'v2.0' : undefined;
}

const BASE = new Set(['name', 'visibility', 'container_format', 'disk_format', 'min_ram', 'min_disk', 'protected', 'tags', 'owner']);
const QUEUED_ONLY = new Set(['container_format', 'disk_format']);

interface PatchOp {
  op: 'add' | 'replace' | 'remove';
  attr: string;
  value?: unknown;
}

const forbidden = (message: string, attr: string): BerthError => imageError('ATTRIBUTE_FORBIDDEN', message, { attribute: attr });

const OPS = ['add', 'replace', 'remove'] as const;

/** The op and path of one item: `op`/`path` members (v2.1), or the op as the key of the path (v2.0). */
function opAndPath(o: Record<string, unknown>, i: number, dialect: PatchDialect): { op: unknown; path: unknown } {
  if (dialect === 'v2.1') return { op: o.op, path: o.path };
  const named = OPS.filter((k) => k in o);
  if (named.length > 1)
    throw invalidInput(`patch item ${i}: Operation objects must contain only one member named "add", "remove", or "replace".`, { index: i });
  if (named.length === 0)
    throw invalidInput(`patch item ${i}: Operation objects must contain exactly one member named "add", "remove", or "replace".`, { index: i });
  return { op: named[0], path: o[named[0]!] };
}

const LOCATIONS_OFF: Record<PatchOp['op'], string> = {
  add: "It's not allowed to add locations if locations are invisible.",
  replace: "It's not allowed to update locations if locations are invisible.",
  remove: "It's not allowed to remove locations if locations are invisible.",
};

function parseOps(body: unknown, dialect: PatchDialect): PatchOp[] {
  if (!Array.isArray(body)) {
    throw invalidInput(
      dialect === 'v2.1'
        ? 'a JSON patch body is a list of {"op", "path", "value"} objects'
        : 'a JSON patch body is a list of {"add"|"replace"|"remove": "/path", "value"} objects',
    );
  }
  return body.map((raw: unknown, i) => {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalidInput(`patch item ${i} is not an object`);
    const o = raw as Record<string, unknown>;
    const { op, path } = opAndPath(o, i, dialect);
    if (op !== 'add' && op !== 'replace' && op !== 'remove') throw invalidInput(`patch item ${i}: op must be add, replace or remove`, { index: i });
    // Locations are never shown (Glance's show_multiple_locations off): any op on them is 403.
    if (typeof path === 'string' && /^\/locations(\/[^/]+)?$/.test(path)) throw forbidden(LOCATIONS_OFF[op], 'locations');
    if (typeof path !== 'string' || !/^\/[^/]+$/.test(path)) throw invalidInput(`patch item ${i}: path must be /ATTRIBUTE`, { index: i });
    const attr = path.slice(1).replace(/~1/g, '/').replace(/~0/g, '~');
    if (op !== 'remove' && !('value' in o)) throw invalidInput(`patch item ${i}: ${op} needs a value`, { index: i });
    return { op, attr, ...(op !== 'remove' ? { value: o.value } : {}) };
  });
}

/** The image attributes a patch may touch, as a create body. */
function editableDocument(image: ImageRecord): Record<string, unknown> {
  const doc: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(image.properties)) if (!READ_ONLY.has(k)) doc[k] = v;
  return {
    ...doc,
    name: image.name,
    visibility: image.visibility,
    container_format: image.container_format,
    disk_format: image.disk_format,
    min_ram: image.min_ram,
    min_disk: image.min_disk,
    protected: image.protected,
    tags: image.tags,
    owner: image.owner,
  };
}

function applyOp(doc: Record<string, unknown>, op: PatchOp, image: ImageRecord, caller: Caller): void {
  const { attr } = op;
  if (READ_ONLY.has(attr) || attr === 'id') throw forbidden(`Attribute '${attr}' is read-only.`, attr);
  // Glance's policy (policy/glance-policy.ts) is checked on the ops, not on the result: an image an admin made
  // public, or gave docker_image, stays editable by its owner in its other attributes.
  checkProperty(caller, attr);
  if (attr === 'owner' && !caller.admin) throw imageError('IMAGE_FORBIDDEN', "Owner can't be updated by non admin.", { image_id: image.id });
  if (attr === 'visibility' && op.op !== 'remove') checkVisibility(caller, op.value as Visibility);
  if (QUEUED_ONLY.has(attr) && image.status !== 'queued') {
    throw forbidden(`Attribute ${attr} can be only replaced for a queued image.`, attr);
  }
  const base = BASE.has(attr);
  if (op.op === 'remove') {
    if (base) throw forbidden(`Attribute '${attr}' is a base attribute and cannot be removed.`, attr);
    if (!(attr in doc)) throw imageError('IMAGE_CONFLICT', `Property ${attr} does not exist.`, { attribute: attr });
    delete doc[attr];
    return;
  }
  if (op.op === 'replace' && !base && !(attr in doc)) throw imageError('IMAGE_CONFLICT', `Property ${attr} does not exist.`, { attribute: attr });
  doc[attr] = op.value;
}

/** The update a patch body asks for on `image`; throws before anything is written. */
export function imagePatchFrom(body: unknown, image: ImageRecord, caller: Caller, dialect: PatchDialect = 'v2.1'): ImagePatch {
  const doc = editableDocument(image);
  for (const op of parseOps(body, dialect)) applyOp(doc, op, image, caller);
  if (doc.name === undefined) doc.name = null;
  const next = parseCreateImage(doc, image.owner ?? '');
  const kept = Object.fromEntries(Object.entries(image.properties).filter(([k]) => READ_ONLY.has(k)));
  return {
    name: next.name ?? null,
    visibility: next.visibility!,
    container_format: next.container_format ?? null,
    disk_format: next.disk_format ?? null,
    min_ram: next.min_ram!,
    min_disk: next.min_disk!,
    protected: next.protected!,
    tags: next.tags!,
    owner: next.owner ?? null,
    properties: { ...next.properties, ...kept },
  };
}
