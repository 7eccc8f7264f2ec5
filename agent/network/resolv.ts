import { readFile } from 'node:fs/promises';

/** Docker's embedded resolver, in every container dockerd attaches to a user-defined network. */
export const ENGINE_RESOLVER = '127.0.0.11';

/** What dockerd writes when the host names no nameserver a container can use. */
const DOCKER_FALLBACK = ['8.8.8.8', '8.8.4.4'];

/**
 * The nameservers dockerd writes into the resolv.conf of a container it attaches to no network
 * (`[docker] network_attach = agent`): the host's, less the loopback ones the container cannot
 * reach and the IPv6 ones (project networks are IPv4 only), else Docker's fallback.
 */
export function guestNameservers(resolvConf: string): string[] {
  const servers: string[] = [];
  for (const line of resolvConf.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    const ip = m?.[1];
    if (!ip || ip.includes(':') || ip.startsWith('127.')) continue;
    servers.push(ip);
  }
  return servers.length ? servers : [...DOCKER_FALLBACK];
}

/** guestNameservers of this host's resolv.conf, read at each call: it may change. */
export async function hostGuestNameservers(path = '/etc/resolv.conf'): Promise<string[]> {
  return guestNameservers(await readFile(path, 'utf8').catch(() => ''));
}
