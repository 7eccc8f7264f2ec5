/**
 * nova object primitives as the conductor exchanges them (oslo-wire-contract.md §7): building
 * Service and ComputeNode by hand, echoing an Instance back with the fields it changed, and
 * merging the `updates` a conductor reply carries.
 */
export interface Primitive {
  'nova_object.name': string;
  'nova_object.namespace': 'nova';
  'nova_object.version': string;
  'nova_object.data': Record<string, unknown>;
  'nova_object.changes'?: string[];
}

/** The versions this node understands; the conductor backports what it returns to them. */
export const OBJECT_VERSIONS = {
  Service: '1.22',
  ComputeNode: '1.19',
  HVSpec: '1.2',
  PciDevicePoolList: '1.1',
  PciDevicePool: '1.1',
  Instance: '2.7',
  InstanceFault: '1.2',
  InstanceInfoCache: '1.5',
  Migration: '1.7',
  MigrationList: '1.5',
  ConsoleAuthToken: '1.1',
} as const;

export function isPrimitive(v: unknown): v is Primitive {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as Record<string, unknown>)['nova_object.name'] === 'string' &&
    typeof (v as Record<string, unknown>)['nova_object.data'] === 'object'
  );
}

/** A new object whose every given field counts as changed (what `create` needs). */
export function newObject(name: keyof typeof OBJECT_VERSIONS, data: Record<string, unknown>): Primitive {
  return {
    'nova_object.name': name,
    'nova_object.namespace': 'nova',
    'nova_object.version': OBJECT_VERSIONS[name],
    'nova_object.data': data,
    'nova_object.changes': Object.keys(data),
  };
}

/** The object with `fields` set and listed as its only changes (what `save` sends). */
export function withChanges(p: Primitive, fields: Record<string, unknown>): Primitive {
  return { ...p, 'nova_object.data': { ...p['nova_object.data'], ...fields }, 'nova_object.changes': Object.keys(fields) };
}

/** Applies a reply's `updates` (field → primitive, plus `obj_what_changed`) and clears the changes. */
export function mergeUpdates(p: Primitive, updates: unknown): Primitive {
  const data = { ...p['nova_object.data'] };
  if (typeof updates === 'object' && updates !== null) {
    for (const [k, v] of Object.entries(updates)) if (k !== 'obj_what_changed') data[k] = v;
  }
  const { 'nova_object.changes': _dropped, ...rest } = p;
  return { ...rest, 'nova_object.data': data };
}

/** nova's DateTime field format on the wire. */
export function novaTime(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

export const emptyPciPools = (): Primitive => ({
  'nova_object.name': 'PciDevicePoolList',
  'nova_object.namespace': 'nova',
  'nova_object.version': '1.1',
  'nova_object.data': { objects: [] },
  'nova_object.changes': ['objects'],
});
