import { createHash } from 'node:crypto';
import type { VifSpec } from '../../agent/client/types.js';
import { unwrap, type Data } from './primitive.js';

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A stable uuid-shaped id for a VIF id that is not a uuid. */
function uuidOf(id: string): string {
  const h = createHash('sha256').update(id).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** The VIFs of an instance's info cache (`info_cache.network_info`); none when absent or unreadable. */
function cachedVifs(d: Data, path: string): Data[] {
  const cache = d.info_cache;
  if (cache === undefined || cache === null) return [];
  const raw = unwrap(cache, 'InstanceInfoCache', `${path}.info_cache`, [1]).network_info;
  let vifs: unknown;
  try {
    vifs = typeof raw === 'string' ? JSON.parse(raw) : raw;
  } catch {
    return [];
  }
  return Array.isArray(vifs) ? (vifs as Data[]).filter((v) => typeof v === 'object' && v !== null) : [];
}

/** A port of an instance's info cache: its id, and whether its caller made it (nova's preserve_on_delete). */
export interface CachedPort {
  id: string;
  preserve_on_delete: boolean;
}

/** The ports of an instance's info cache, of any VIF type, in its order. */
export function cachedPortsOf(d: Data, path: string): CachedPort[] {
  return cachedVifs(d, path).flatMap((v) =>
    typeof v.id === 'string' && UUID.test(v.id) ? [{ id: v.id.toLowerCase(), preserve_on_delete: v.preserve_on_delete === true }] : [],
  );
}

/**
 * The `bridge` VIFs of an instance's network_info (its info cache) as a caller gave them, each as
 * the plug the agent makes: the VIF's MAC, its IPv4 addresses with the subnet's prefix, the first
 * gateway, the subnets' routes and DNS servers, the network's MTU (1500 when absent), into the
 * bridge it names (`network.bridge`). The host end is `tap` + the VIF id (cut to 14 characters);
 * an id that is not a uuid is replaced by one derived from it (the agent keys VIFs by uuid). VIFs of another type, or without a bridge, are left
 * out; whether the bridge may be used is the agent's to check.
 */
export function bridgeVifsOf(d: Data, path: string): VifSpec[] {
  const out: VifSpec[] = [];
  for (const vif of cachedVifs(d, path)) {
    const net = (vif?.network ?? {}) as Data;
    if (vif?.type !== 'bridge' || typeof net.bridge !== 'string' || !net.bridge || typeof vif.id !== 'string' || !MAC.test(String(vif.address))) continue;
    const subnets = ((Array.isArray(net.subnets) ? net.subnets : []) as Data[]).filter((s) => Number(s?.version ?? 4) === 4 && typeof s?.cidr === 'string');
    const prefixOf = (s: Data) => Number(String(s.cidr).split('/')[1]);
    const addr = (x: unknown): string | null => {
      const a = (x as Data | null)?.address;
      return typeof a === 'string' && IPV4.test(a) ? a : null;
    };
    const id = UUID.test(vif.id) ? vif.id.toLowerCase() : uuidOf(vif.id);
    const mtu = Number((net.meta as Data | undefined)?.mtu ?? 1500);
    out.push({
      portId: id,
      tap: `tap${id}`.slice(0, 14),
      bridge: net.bridge,
      mac: String(vif.address).toLowerCase(),
      mtu: Number.isInteger(mtu) ? mtu : 1500,
      addresses: subnets.flatMap((s) =>
        ((Array.isArray(s.ips) ? s.ips : []) as unknown[]).flatMap((ip) => {
          const a = addr(ip);
          return a ? [{ address: a, prefix: prefixOf(s) }] : [];
        }),
      ),
      gateway: subnets.map((s) => addr(s.gateway)).find((g) => g !== null) ?? null,
      routes: subnets.flatMap((s) =>
        ((Array.isArray(s.routes) ? s.routes : []) as Data[]).flatMap((r) => {
          const via = addr(r?.gateway);
          return via && typeof r?.cidr === 'string' ? [{ destination: r.cidr, nexthop: via }] : [];
        }),
      ),
      dns: [...new Set(subnets.flatMap((s) => ((Array.isArray(s.dns) ? s.dns : []) as unknown[]).map(addr).filter((a): a is string => a !== null)))],
    });
  }
  return out;
}
