import { RpcFailure, novaError } from '../rpc/failure.js';

/**
 * Reading nova_object primitives (oslo.versionedobjects, contract §7.1). Unset fields are absent
 * keys; any minor version of a known object is accepted and unknown fields are ignored. What
 * cannot be decoded fails with nova's InvalidInput naming the field.
 */
export type Data = Record<string, unknown>;

export function invalidField(path: string, why: string): RpcFailure {
  return novaError('InvalidInput', 400, `Invalid input received: ${path}: ${why}`, { reason: `${path}: ${why}` });
}

/** A short, safe rendering of a received value for an error message (never recurses). */
export function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
  if (v === null || typeof v === 'number' || typeof v === 'boolean') return String(v);
  return Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'an object' : typeof v;
}

function isObject(v: unknown): v is Data {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The `nova_object.data` of a primitive named `name` (major version checked). */
export function unwrap(value: unknown, name: string, path: string, majors: number[]): Data {
  if (!isObject(value)) throw invalidField(path, `expected a ${name} object`);
  const objName = value['nova_object.name'];
  if (objName !== name) throw invalidField(path, `expected a ${name} object, got ${show(objName ?? null)}`);
  const version = value['nova_object.version'];
  const major = typeof version === 'string' ? Number(version.split('.')[0]) : NaN;
  if (!majors.includes(major)) throw invalidField(path, `unsupported ${name} version ${show(version ?? null)}`);
  const data = value['nova_object.data'];
  if (!isObject(data)) throw invalidField(path, 'nova_object.data is not an object');
  return data;
}

/** A list object's members (`XxxList` with `objects`). */
export function unwrapList(value: unknown, name: string, path: string): unknown[] {
  if (value === null || value === undefined) return [];
  const data = unwrap(value, `${name}List`, path, [1, 2]);
  const objects = data.objects;
  if (!Array.isArray(objects)) throw invalidField(`${path}.objects`, 'expected a list');
  return objects;
}

export const field = {
  str(d: Data, k: string, path: string): string {
    const v = d[k];
    if (typeof v !== 'string') throw invalidField(`${path}.${k}`, v === undefined ? 'missing' : 'expected a string');
    return v;
  },
  optStr(d: Data, k: string, path: string): string | null {
    const v = d[k];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string') throw invalidField(`${path}.${k}`, 'expected a string or null');
    return v;
  },
  int(d: Data, k: string, path: string, min = 0): number {
    const v = d[k];
    if (typeof v !== 'number' || !Number.isInteger(v)) throw invalidField(`${path}.${k}`, v === undefined ? 'missing' : 'expected an integer');
    if (v < min) throw invalidField(`${path}.${k}`, `must be at least ${min}`);
    return v;
  },
  optInt(d: Data, k: string, path: string): number | null {
    const v = d[k];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'number' || !Number.isInteger(v)) throw invalidField(`${path}.${k}`, 'expected an integer or null');
    return v;
  },
  optBool(d: Data, k: string, path: string): boolean | null {
    const v = d[k];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'boolean') throw invalidField(`${path}.${k}`, 'expected a boolean');
    return v;
  },
  dictOfStrings(d: Data, k: string, path: string): Record<string, string> {
    const v = d[k];
    if (v === undefined || v === null) return {};
    if (!isObject(v)) throw invalidField(`${path}.${k}`, 'expected an object of strings');
    const out: Record<string, string> = {};
    for (const [key, val] of Object.entries(v)) {
      if (typeof val !== 'string') throw invalidField(`${path}.${k}.${key}`, 'expected a string');
      out[key] = val;
    }
    return out;
  },
  /** DateTimeField: `YYYY-MM-DDTHH:MM:SSZ` (fractions and offsets tolerated). */
  optDate(d: Data, k: string, path: string): Date | null {
    const v = d[k];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string') throw invalidField(`${path}.${k}`, 'expected a date-time string');
    const t = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(v) ? v : `${v}Z`);
    if (Number.isNaN(t)) throw invalidField(`${path}.${k}`, `not a date-time: ${show(v)}`);
    return new Date(t);
  },
};
