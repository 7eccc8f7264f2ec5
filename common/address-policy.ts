import { BlockList, isIP } from 'node:net';

/**
 * Which network addresses count as internal (not reachable from the public Internet, or special
 * to this host), and an operator's allowlist of exceptions. Used to stop a fetch whose destination
 * a tenant chose (a registry, its token realm, a redirect) from reaching services inside the cloud:
 * the metadata service on 169.254.169.254, loopback daemons, the control plane on private subnets.
 */

const INTERNAL = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  INTERNAL.addSubnet(net, prefix, 'ipv4');
// ::/96 covers the unspecified address, loopback and the deprecated IPv4-compatible addresses.
for (const [net, prefix] of [
  ['::', 96],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const)
  INTERNAL.addSubnet(net, prefix, 'ipv6');

/** The 8 16-bit groups of an IPv6 address (which must be valid), zone id dropped. */
function groupsOf(v6: string): number[] {
  let text = v6.replace(/%.*$/, '');
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, -v4[1]!.length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? (text.split('::') as [string, string]) : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => parseInt(g, 16));
}

const v4Of = (hi: number, lo: number): string => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;

/**
 * The IPv4 address an IPv6 address stands for, if it embeds one that would be routed to it:
 * IPv4-mapped (::ffff:a.b.c.d, how a dual-stack socket shows IPv4 peers), NAT64 (64:ff9b::/96)
 * and 6to4 (2002::/16). `[::ffff:127.0.0.1]` must be as internal as `127.0.0.1`.
 */
export function embeddedIPv4(v6: string): string | null {
  const g = groupsOf(v6);
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff) return v4Of(g[6]!, g[7]!);
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return v4Of(g[6]!, g[7]!);
  if (g[0] === 0x2002) return v4Of(g[1]!, g[2]!);
  return null;
}

/**
 * True for loopback, link-local, private (RFC 1918, ULA fc00::/7, CGNAT 100.64/10), unspecified,
 * multicast, broadcast, documentation and other reserved addresses, in IPv4 or IPv6 form. Anything
 * that is not an IP address is internal too: the caller resolved it, so it must be one.
 */
export function isInternalAddress(address: string): boolean {
  const family = isIP(address.replace(/%.*$/, ''));
  if (family === 4) return INTERNAL.check(address, 'ipv4');
  if (family !== 6) return true;
  const v4 = embeddedIPv4(address);
  if (v4 !== null && INTERNAL.check(v4, 'ipv4')) return true;
  return INTERNAL.check(address.replace(/%.*$/, ''), 'ipv6');
}

/** One allowlist entry: a CIDR or address (any port), or a host name or address with an optional port. */
type Entry = { kind: 'cidr'; list: BlockList } | { kind: 'host'; host: string; port: number | null };

/**
 * Parses `entry`: `10.1.0.0/16`, `fd00::/8`, `127.0.0.1` (any port), `127.0.0.1:5000`,
 * `[::1]:5000`, `registry.internal` (any port) or `registry.internal:5000`. Returns a reason when
 * it is none of these.
 */
export function parseAllowEntry(entry: string): Entry | string {
  const text = entry.trim();
  const cidr = /^([^/]+)\/(\d{1,3})$/.exec(text);
  const plain = text.replace(/^\[(.*)\]$/, '$1');
  if (cidr || isIP(plain)) {
    const address = cidr ? cidr[1]!.replace(/^\[(.*)\]$/, '$1') : plain;
    const family = isIP(address);
    if (!family) return `${JSON.stringify(entry)} is not a CIDR (${address} is not an IP address)`;
    const prefix = cidr ? Number(cidr[2]) : family === 4 ? 32 : 128;
    if (prefix > (family === 4 ? 32 : 128)) return `${JSON.stringify(entry)}: prefix /${prefix} is too long`;
    const list = new BlockList();
    list.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
    return { kind: 'cidr', list };
  }
  const m = /^(\[[0-9a-fA-F:.]+\]|[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?)(?::(\d{1,5}))?$/.exec(text);
  if (!m) return `${JSON.stringify(entry)} is neither a CIDR nor HOST[:PORT]`;
  const port = m[2] === undefined ? null : Number(m[2]);
  if (port !== null && (port < 1 || port > 65535)) return `${JSON.stringify(entry)}: port ${port} is out of range`;
  return { kind: 'host', host: m[1]!.replace(/^\[(.*)\]$/, '$1').toLowerCase(), port };
}

/**
 * The operator's exceptions to "no internal destinations" ([registry] allowed_internal). A
 * destination is allowed when its address is not internal, or an entry names its address (CIDR),
 * or its host name or address with its port.
 */
export class AddressAllowlist {
  private readonly entries: Entry[];

  /** Throws on an entry that does not parse, naming it. */
  constructor(entries: readonly string[]) {
    this.entries = entries.map((e) => {
      const parsed = parseAllowEntry(e);
      if (typeof parsed === 'string') throw new Error(`allowlist entry ${parsed}`);
      return parsed;
    });
  }

  /** May `hostname` (as written in the URL), port `port`, connect to `address`? */
  allows(hostname: string, port: number, address: string): boolean {
    if (!isInternalAddress(address)) return true;
    const host = hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
    const bare = address.replace(/%.*$/, '').toLowerCase();
    // An IPv4-mapped peer matches the entries written for its IPv4 address too.
    const mapped = isIP(bare) === 6 ? embeddedIPv4(bare) : null;
    const addresses = mapped ? [bare, mapped] : [bare];
    return this.entries.some((e) =>
      addresses.some((a) =>
        e.kind === 'cidr' ? e.list.check(a, isIP(a) === 6 ? 'ipv6' : 'ipv4') : (e.host === host || e.host === a) && (e.port === null || e.port === port),
      ),
    );
  }
}
