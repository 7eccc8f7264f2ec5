import { isIPv4 } from 'node:net';
import { invalidInput } from '../common/errors.js';
import { requireUuid } from '../common/koa.js';
import type { FlavorSpec, InstanceAction, InstanceSpec, SnapshotOptions, VifSpec } from './client/types.js';
import { flavorLimits } from './runtime/limits.js';
import { callerBridgeAllowed } from './network/neutron-vifs.js';

/**
 * Request validation. Each failure is INVALID_INPUT naming the field; fields the agent does not
 * know are ignored so the driver can add fields before every agent understands them.
 */
type Obj = Record<string, unknown>;

const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function object(v: unknown, field: string): Obj {
  if (!isObject(v)) throw invalidInput(`${field} must be a JSON object`, { field });
  return v;
}

function int(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw invalidInput(`${field} must be an integer from ${min} to ${max}`, { field });
  }
  return v;
}

/** A pattern check: a RegExp, or a predicate for text a backtracking pattern could not check in linear time. */
type Pattern = RegExp | ((v: string) => boolean);

function str(v: unknown, field: string, max: number, pattern?: Pattern, what = 'a string'): string {
  // The length is checked first, so no pattern ever sees more than `max` characters.
  if (typeof v !== 'string' || v.length === 0 || v.length > max || (pattern && !(typeof pattern === 'function' ? pattern(v) : pattern.test(v)))) {
    throw invalidInput(`${field} must be ${what} of 1 to ${max} characters`, { field });
  }
  return v;
}

const nullable = <T>(v: unknown, check: (v: unknown) => T): T | null => (v === null || v === undefined ? null : check(v));

function stringMap(v: unknown, field: string, maxKeys: number, maxLen: number): Record<string, string> {
  const o = object(v ?? {}, field);
  const entries = Object.entries(o);
  if (entries.length > maxKeys) throw invalidInput(`${field} has more than ${maxKeys} keys`, { field });
  const out: Record<string, string> = {};
  for (const [k, val] of entries) {
    if (k.length === 0 || k.length > maxLen) throw invalidInput(`${field} keys must have 1 to ${maxLen} characters`, { field });
    if (typeof val !== 'string' || val.length > maxLen)
      throw invalidInput(`${field}.${k} must be a string of at most ${maxLen} characters`, { field: `${field}.${k}` });
    out[k] = val;
  }
  return out;
}

const HOSTNAME_RE = /^(?=.{1,63}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const ID_RE = /^[A-Za-z0-9_.@-]+$/;
const KEY_NAME_RE = /^[A-Za-z0-9_. @-]+$/;
const REQUEST_ID_RE = /^req-[0-9a-f-]{36}$/;

const isBase64Char = (c: number): boolean =>
  (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2f || c === 0x0d || c === 0x0a;
const WHITESPACE_RE = /\s/;

/**
 * Base64 text as user_data is sent: base64 characters and line breaks, at most two `=`, then
 * trailing white space. A single pass over the text. The pattern this replaces,
 * /^[A-Za-z0-9+/\r\n]*={0,2}\s*$/, backtracks between its two runs of line breaks and took
 * seconds of CPU on 64 KiB of line breaks followed by one bad character.
 */
export function isBase64Text(v: string): boolean {
  let i = 0;
  while (i < v.length && isBase64Char(v.charCodeAt(i))) i++;
  for (let pad = 0; pad < 2 && v.charCodeAt(i) === 0x3d; pad++) i++;
  // One character at a time: a pattern on a single character cannot backtrack.
  for (; i < v.length; i++) if (!WHITESPACE_RE.test(v[i]!)) return false;
  return true;
}

function flavor(v: unknown): FlavorSpec {
  const f = object(v, 'flavor');
  const spec: FlavorSpec = {
    vcpus: int(f.vcpus, 'flavor.vcpus', 1, 1024),
    // Docker refuses memory limits under 6 MiB.
    memory_mb: int(f.memory_mb, 'flavor.memory_mb', 6, 16 * 1024 * 1024),
    root_gb: int(f.root_gb, 'flavor.root_gb', 0, 1024 * 1024),
    swap: int(f.swap ?? 0, 'flavor.swap', 0, 16 * 1024 * 1024),
    extra_specs: stringMap(f.extra_specs, 'flavor.extra_specs', 256, 255),
  };
  flavorLimits(spec);
  return spec;
}

export function validateInstanceSpec(body: unknown): InstanceSpec {
  const b = object(body, 'request body');
  const spec: InstanceSpec = {
    image_id: requireUuid(b.image_id, 'image_id'),
    flavor: flavor(b.flavor),
    name: str(b.name, 'name', 255),
    hostname: str(b.hostname, 'hostname', 63, HOSTNAME_RE, 'a host name (letters, digits, hyphens, dots)'),
    project_id: str(b.project_id, 'project_id', 255, ID_RE, 'an identifier'),
    user_id: str(b.user_id, 'user_id', 255, ID_RE, 'an identifier'),
    metadata: stringMap(b.metadata, 'metadata', 128, 255),
    user_data: nullable(b.user_data, (v) => str(v, 'user_data', 65535, isBase64Text, 'base64 text')),
    key_data: nullable(b.key_data, (v) => str(v, 'key_data', 16384)),
    fixed_ip: nullable(b.fixed_ip, ipv4),
  };
  if (b.key_name !== undefined && b.key_name !== null) spec.key_name = str(b.key_name, 'key_name', 255, KEY_NAME_RE, 'a key pair name');
  if (b.vifs !== undefined && b.vifs !== null) spec.vifs = vifList(b.vifs);
  if (b.request_id !== undefined) spec.request_id = str(b.request_id, 'request_id', 40, REQUEST_ID_RE, 'a request id req-<uuid>');
  return spec;
}

const MAX_VIFS = 16;
const TAP_RE = /^tap[0-9a-f-]{11}$/;
const BRIDGE_RE = (v: string): boolean => /^brq[0-9a-f-]{11}$/.test(v) || callerBridgeAllowed(v);
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;

/** `vifs`: Neutron bridge VIFs, each checked field by field (they become command-line tokens at plug time). */
function vifList(v: unknown): VifSpec[] {
  if (!Array.isArray(v) || v.length > MAX_VIFS) throw invalidInput(`vifs must be a list of at most ${MAX_VIFS} VIFs`, { field: 'vifs' });
  return v.map((item, i) => vifSpec(item, `vifs[${i}]`));
}

/** Body of PUT /v1/instances/{uuid}/vifs/{port_id}: `{"vif": VifSpec}` for that port. */
export function validateVifAttach(body: unknown, portId: string): VifSpec {
  const vif = vifSpec(object(body, 'request body').vif, 'vif');
  if (vif.portId !== portId) throw invalidInput('vif.portId must be the port id of the path', { field: 'vif.portId' });
  return vif;
}

function vifSpec(item: unknown, f: string): VifSpec {
  {
    const o = object(item, f);
    const addr = (x: unknown, field: string): string => str(x, field, 15, isIPv4, 'an IPv4 address');
    const list = (x: unknown, field: string): unknown[] => {
      if (!Array.isArray(x) || x.length > 64) throw invalidInput(`${field} must be a list of at most 64 entries`, { field });
      return x;
    };
    return {
      portId: requireUuid(o.portId, `${f}.portId`),
      tap: str(o.tap, `${f}.tap`, 14, TAP_RE, 'a tap name (tap + port id, 14 characters)'),
      bridge: str(
        o.bridge,
        `${f}.bridge`,
        15,
        BRIDGE_RE,
        "a bridge name (brq + network id, 14 characters, or an existing Linux bridge that is not the engine's)",
      ),
      mac: str(o.mac, `${f}.mac`, 17, MAC_RE, 'a MAC address'),
      mtu: int(o.mtu, `${f}.mtu`, 576, 65535),
      addresses: list(o.addresses, `${f}.addresses`).map((a, j) => {
        const x = object(a, `${f}.addresses[${j}]`);
        return { address: addr(x.address, `${f}.addresses[${j}].address`), prefix: int(x.prefix, `${f}.addresses[${j}].prefix`, 1, 32) };
      }),
      gateway: nullable(o.gateway, (g) => addr(g, `${f}.gateway`)),
      routes: list(o.routes, `${f}.routes`).map((r, j) => {
        const x = object(r, `${f}.routes[${j}]`);
        return {
          destination: str(x.destination, `${f}.routes[${j}].destination`, 18, isIPv4Cidr, 'an IPv4 CIDR'),
          nexthop: addr(x.nexthop, `${f}.routes[${j}].nexthop`),
        };
      }),
      dns: list(o.dns ?? [], `${f}.dns`).map((d, j) => addr(d, `${f}.dns[${j}]`)),
    };
  }
}

function isIPv4Cidr(v: string): boolean {
  const [a, p, ...rest] = v.split('/');
  return rest.length === 0 && a !== undefined && isIPv4(a) && p !== undefined && /^([0-9]|[12]\d|3[0-2])$/.test(p);
}

function ipv4(v: unknown): string {
  if (typeof v !== 'string' || !isIPv4(v)) throw invalidInput('fixed_ip must be an IPv4 address or null', { field: 'fixed_ip' });
  return v;
}

const MAX_TIMEOUT = 3600;

/** Body of PUT /v1/instances/{uuid}/flavor: the flavor whose limits the instance takes in place. */
export function validateFlavorChange(body: unknown): FlavorSpec {
  return flavor(object(body, 'request body').flavor);
}

/** Body of POST /v1/instances/{uuid}/snapshot: the queued Glance image to fill. */
export function validateSnapshot(body: unknown): { imageId: string; opts: SnapshotOptions } {
  const b = object(body, 'request body');
  const imageId = requireUuid(b.image_id, 'image_id');
  if (b.omit_base_layers !== undefined && typeof b.omit_base_layers !== 'boolean')
    throw invalidInput('omit_base_layers must be a boolean', { field: 'omit_base_layers' });
  return { imageId, opts: b.omit_base_layers ? { omit_base_layers: true } : {} };
}

export function validateAction(body: unknown): InstanceAction {
  const b = object(body, 'request body');
  const timeout = (): { timeout?: number } => (b.timeout === undefined ? {} : { timeout: int(b.timeout, 'timeout', 0, MAX_TIMEOUT) });
  switch (b.action) {
    case 'start':
    case 'pause':
    case 'unpause':
    case 'suspend':
    case 'resume':
    case 'crash_dump':
      return { action: b.action };
    case 'stop':
      return { action: 'stop', ...timeout() };
    case 'reboot': {
      if (b.hard !== undefined && typeof b.hard !== 'boolean') throw invalidInput('hard must be true or false', { field: 'hard' });
      return { action: 'reboot', hard: b.hard === true, ...timeout() };
    }
    default:
      throw invalidInput('action must be one of start, stop, reboot, pause, unpause, suspend, resume, crash_dump', { field: 'action' });
  }
}

/** An optional non-negative integer query parameter. */
export function queryInt(value: string | string[] | undefined, field: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !/^\d{1,9}$/.test(value)) throw invalidInput(`${field} must be an integer from 0 to ${max}`, { field });
  return int(Number(value), field, 0, max);
}
