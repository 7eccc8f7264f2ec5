import type { VifSpec } from '../../agent/client/types.js';
import { bridgeVifsOf, cachedPortsOf, type CachedPort } from './caller-vifs.js';
import { field, invalidField, show, unwrap, type Data } from './primitive.js';

/** The parts of nova's Flavor (1.x) Berth uses. */
export interface Flavor {
  flavorid: string;
  name: string;
  vcpus: number;
  memory_mb: number;
  root_gb: number;
  ephemeral_gb: number;
  swap: number;
  extra_specs: Record<string, string>;
}

export interface NetworkAddress {
  address: string;
  version: number;
  network_label: string | null;
  mac: string | null;
}

/** The parts of nova's Instance (2.x) Berth uses, decoded and validated. */
export interface Instance {
  uuid: string;
  display_name: string;
  hostname: string;
  project_id: string;
  user_id: string;
  image_ref: string;
  flavor: Flavor;
  vm_state: string | null;
  task_state: string | null;
  power_state: number | null;
  host: string | null;
  node: string | null;
  metadata: Record<string, string>;
  user_data: string | null;
  key_name: string | null;
  key_data: string | null;
  availability_zone: string | null;
  reservation_id: string | null;
  launched_at: Date | null;
  created_at: Date | null;
  addresses: NetworkAddress[];
  /** The `bridge` VIFs of its network_info as plugs (standalone mode plugs them into the bridges they name). */
  bridge_vifs: VifSpec[];
  /** The Neutron ports of its info cache (an instance built on another node that arrives here). */
  cached_ports: CachedPort[];
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function decodeFlavor(value: unknown, path: string): Flavor {
  const d = unwrap(value, 'Flavor', path, [1]);
  return {
    flavorid: field.optStr(d, 'flavorid', path) ?? String(d.id ?? ''),
    name: field.optStr(d, 'name', path) ?? '',
    vcpus: field.int(d, 'vcpus', path, 1),
    memory_mb: field.int(d, 'memory_mb', path, 1),
    root_gb: field.optInt(d, 'root_gb', path) ?? 0,
    ephemeral_gb: field.optInt(d, 'ephemeral_gb', path) ?? 0,
    swap: field.optInt(d, 'swap', path) ?? 0,
    extra_specs: field.dictOfStrings(d, 'extra_specs', path),
  };
}

/** Fixed IPs from `info_cache.network_info` (a JSON string of VIFs). */
function decodeAddresses(d: Data, path: string): NetworkAddress[] {
  const cache = d.info_cache;
  if (cache === undefined || cache === null) return [];
  const cd = unwrap(cache, 'InstanceInfoCache', `${path}.info_cache`, [1]);
  const raw = cd.network_info;
  if (raw === undefined || raw === null || raw === '') return [];
  let vifs: unknown;
  try {
    vifs = typeof raw === 'string' ? JSON.parse(raw) : raw;
  } catch {
    throw invalidField(`${path}.info_cache.network_info`, 'not valid JSON');
  }
  if (!Array.isArray(vifs)) throw invalidField(`${path}.info_cache.network_info`, 'expected a list of VIFs');
  const out: NetworkAddress[] = [];
  for (const vif of vifs as Data[]) {
    const net = (vif?.network ?? {}) as Data;
    for (const subnet of (Array.isArray(net.subnets) ? net.subnets : []) as Data[]) {
      for (const ip of (Array.isArray(subnet?.ips) ? subnet.ips : []) as Data[]) {
        if (typeof ip?.address === 'string') {
          out.push({
            address: ip.address,
            version: Number(ip.version ?? subnet.version ?? 4),
            network_label: typeof net.label === 'string' ? net.label : null,
            mac: typeof vif.address === 'string' ? vif.address : null,
          });
        }
      }
    }
  }
  return out;
}

export function decodeInstance(value: unknown, path = 'instance'): Instance {
  const d = unwrap(value, 'Instance', path, [2]);
  const uuid = field.str(d, 'uuid', path);
  if (!UUID_RE.test(uuid)) throw invalidField(`${path}.uuid`, `not a UUID: ${show(uuid)}`);
  if (d.flavor === undefined || d.flavor === null) throw invalidField(`${path}.flavor`, 'missing');
  return {
    uuid: uuid.toLowerCase(),
    display_name: field.optStr(d, 'display_name', path) ?? '',
    hostname: field.optStr(d, 'hostname', path) ?? '',
    project_id: field.optStr(d, 'project_id', path) ?? '',
    user_id: field.optStr(d, 'user_id', path) ?? '',
    image_ref: field.optStr(d, 'image_ref', path) ?? '',
    flavor: decodeFlavor(d.flavor, `${path}.flavor`),
    vm_state: field.optStr(d, 'vm_state', path),
    task_state: field.optStr(d, 'task_state', path),
    power_state: field.optInt(d, 'power_state', path),
    host: field.optStr(d, 'host', path),
    node: field.optStr(d, 'node', path),
    metadata: field.dictOfStrings(d, 'metadata', path),
    user_data: field.optStr(d, 'user_data', path),
    key_name: field.optStr(d, 'key_name', path),
    key_data: field.optStr(d, 'key_data', path),
    availability_zone: field.optStr(d, 'availability_zone', path),
    reservation_id: field.optStr(d, 'reservation_id', path),
    launched_at: field.optDate(d, 'launched_at', path),
    created_at: field.optDate(d, 'created_at', path),
    addresses: decodeAddresses(d, path),
    bridge_vifs: bridgeVifsOf(d, path),
    cached_ports: cachedPortsOf(d, path),
  };
}

/** Just the uuid, for methods that must work even on a partly broken record. */
export function instanceUuid(value: unknown, path = 'instance'): string {
  const d = unwrap(value, 'Instance', path, [2]);
  const uuid = field.str(d, 'uuid', path);
  if (!UUID_RE.test(uuid)) throw invalidField(`${path}.uuid`, `not a UUID: ${show(uuid)}`);
  return uuid.toLowerCase();
}

/**
 * An Instance argument as the dispatcher hands it to a handler: decoded once, its uuid checked
 * (enough for methods that must work even on a partly broken record), the full decode on demand.
 */
export class InstanceArg {
  readonly uuid: string;
  constructor(
    readonly primitive: unknown,
    private readonly path = 'instance',
  ) {
    this.uuid = instanceUuid(primitive, path);
  }
  decode(): Instance {
    return decodeInstance(this.primitive, this.path);
  }
}
