import { isIPv4 } from 'node:net';
import { invalidInput } from '../../common/errors.js';

/** An IPv4 network as numbers: `base` is the network address, `prefix` its length. */
export interface Cidr {
  base: number;
  prefix: number;
}

export function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

export function intToIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

const size = (c: Cidr): number => 2 ** (32 - c.prefix);

/** Parses `A.B.C.D/N`; null when it is not one, or when host bits are set. */
export function parseCidr(text: string): Cidr | null {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(text.trim());
  if (!m || !isIPv4(m[1]!)) return null;
  const prefix = Number(m[2]);
  if (prefix > 32) return null;
  const base = ipToInt(m[1]!);
  return base % size({ base, prefix }) === 0 ? { base, prefix } : null;
}

export const formatCidr = (c: Cidr): string => `${intToIp(c.base)}/${c.prefix}`;

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.base < b.base + size(b) && b.base < a.base + size(a);
}

export function contains(c: Cidr, ip: string): boolean {
  const n = ipToInt(ip);
  return n >= c.base && n < c.base + size(c);
}

/** The subnets of length `prefix` that `pool` splits into, in address order. */
export function* splitPool(pool: Cidr, prefix: number): Generator<Cidr> {
  const step = 2 ** (32 - prefix);
  for (let base = pool.base; base < pool.base + size(pool); base += step) yield { base, prefix };
}

/** The gateway takes the first host address, as Docker's default IPAM does. */
export const gatewayOf = (c: Cidr): string => intToIp(c.base + 1);

/** Host addresses an instance may take: all but network, gateway and broadcast. */
export function* instanceAddresses(c: Cidr): Generator<string> {
  for (let n = c.base + 2; n < c.base + size(c) - 1; n++) yield intToIp(n);
}

export function isInstanceAddress(c: Cidr, ip: string): boolean {
  const n = ipToInt(ip);
  return n >= c.base + 2 && n < c.base + size(c) - 1;
}

export function netmaskOf(prefix: number): string {
  return intToIp(prefix === 0 ? 0 : 2 ** 32 - 2 ** (32 - prefix));
}

/** The MAC Docker itself derives from an address (02:42 + the four octets), set explicitly so
 * network_data.json can name it before the container exists. */
export function macFor(ip: string): string {
  return ['02', '42', ...ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}

/** Reads the configured pool; a bad value stops start-up rather than failing each create. */
export function requirePool(text: string, prefix: number): Cidr {
  const pool = parseCidr(text);
  if (!pool) throw invalidInput(`[agent] project_subnet_pool must be an IPv4 CIDR with no host bits set, got ${JSON.stringify(text)}`);
  if (pool.prefix > prefix) throw invalidInput(`[agent] project_subnet_pool ${text} is smaller than one /${prefix} project subnet`);
  return pool;
}
