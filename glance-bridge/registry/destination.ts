import { lookup as dnsLookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { AddressAllowlist } from '../../common/address-policy.js';
import { imageError } from '../errors.js';

/** Resolves a host name to every address it has (as dns.lookup with `all`). */
export type Resolver = (hostname: string) => Promise<{ address: string; family: number }[]>;

const systemResolver: Resolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

const defaultPort = (url: URL): number => Number(url.port || (url.protocol === 'https:' ? 443 : 80));

/**
 * Where the importer may connect: every destination a tenant can steer it to (the registry named
 * in a reference, the token realm a registry names, each redirect hop) is checked here, at connect
 * time, against the addresses it resolves to. Internal ones (loopback, link-local such as the
 * metadata service, private, ...) are refused unless [registry] allowed_internal lists them.
 *
 * The check is the connection's own lookup (`lookupFor`), so the address checked is the address
 * connected to: a name that resolves to a public address when checked and to 127.0.0.1 a moment
 * later (DNS rebinding) cannot slip through.
 */
export class DestinationGuard {
  private readonly allowlist: AddressAllowlist;
  /**
   * Connection pools whose every socket was made through this guard's lookup: a pool shared with
   * a differently configured guard would hand out sockets this one never checked.
   */
  private readonly agents = { 'http:': new http.Agent({ keepAlive: true, maxSockets: 64 }), 'https:': new https.Agent({ keepAlive: true, maxSockets: 64 }) };

  constructor(
    allowedInternal: readonly string[] = [],
    private readonly resolver: Resolver = systemResolver,
    /** A pool given by the client's owner (HttpRegistryOptions.agent), for both schemes. */
    private readonly given?: http.Agent,
  ) {
    this.allowlist = new AddressAllowlist(allowedInternal);
  }

  /** Throws REGISTRY_DESTINATION_REFUSED unless `url` may be connected to at `address`. */
  check(url: URL, address: string): void {
    if (this.allowlist.allows(url.hostname, defaultPort(url), address)) return;
    // The address is not named: a tenant must not learn what internal names resolve to.
    throw imageError(
      'REGISTRY_DESTINATION_REFUSED',
      `${url.host} is an internal address; the image service does not connect there (an operator can allow it in [registry] allowed_internal)`,
      { host: url.host },
    );
  }

  /**
   * Checks an IP-literal host before connecting (node's sockets do not look those up); for a
   * host name, `lookupFor` does the check when the socket resolves it.
   */
  checkLiteral(url: URL): void {
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (isIP(host)) this.check(url, host);
  }

  agentFor(url: URL): http.Agent {
    if (this.given) return this.given;
    return this.agents[url.protocol === 'https:' ? 'https:' : 'http:'];
  }

  /** A `lookup` for http.request that resolves `url`'s host and refuses it if any address is refused. */
  lookupFor(url: URL): LookupFunction {
    return (hostname, options, callback) => {
      this.resolver(hostname)
        .then((found) => {
          if (found.length === 0) throw Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' });
          // Every address, not only the first: with several, the socket may try each of them.
          for (const a of found) this.check(url, a.address);
          const wanted = options.family === 6 || options.family === 4 ? found.filter((a) => a.family === options.family) : found;
          const usable = wanted.length ? wanted : found;
          if (options.all) callback(null, usable);
          else callback(null, usable[0]!.address, usable[0]!.family);
        })
        .catch((err: NodeJS.ErrnoException) => callback(err, '', 0));
    };
  }
}
