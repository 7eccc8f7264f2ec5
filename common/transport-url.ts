/**
 * oslo.messaging's transport URL, read as `oslo_messaging.TransportURL.parse` and the rabbit
 * driver read it:
 *
 *   rabbit://user:pass@host1:5672,user2:pass2@host2:5672/vhost?option=value
 *
 * - the hosts are the comma-separated parts of the netloc, each with its own credentials; a host
 *   without credentials is taken with RabbitMQ's default guest/guest (kombu's default), as is a
 *   host with a user name but no password;
 * - the user name and the password are percent-decoded (a `@` in the password may stay raw: the
 *   last `@` ends the credentials; `/`, `?`, `#` and `,` must be escaped);
 * - a port left out is 5672, TLS or not (oslo writes 5672 into every URL it hands kombu); Berth's
 *   own `amqps://` scheme defaults to 5671;
 * - IPv6 addresses are written in brackets: `[::1]:5672`;
 * - the path is the vhost, percent-decoded; none or `/` is the default vhost `/`;
 * - query parameters override the [oslo_messaging_rabbit] options of the same name (oslo's
 *   ConfigOptsProxy), e.g. `?ssl=1`; repeated ones are joined with commas.
 */
export interface BrokerHost {
  hostname: string;
  port: number;
  username: string;
  password: string;
}

export interface TransportUrl {
  scheme: 'rabbit' | 'amqp' | 'amqps';
  hosts: BrokerHost[];
  vhost: string;
  query: Record<string, string>;
  /** True for amqps://; otherwise TLS comes from [oslo_messaging_rabbit] ssl or `?ssl=`. */
  tls: boolean;
}

export class TransportUrlError extends Error {
  readonly code = 'BAD_TRANSPORT_URL';
}

const SCHEMES = ['rabbit', 'amqp', 'amqps'] as const;

/** Throws TransportUrlError naming the problem; the message never shows a password. */
export function parseTransportUrl(text: string): TransportUrl {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?(?:#.*)?$/.exec(text);
  if (!m) throw new TransportUrlError(`transport_url must look like rabbit://user:pass@host:5672/vhost, got ${redactUrl(text)}`);
  const scheme = m[1]!.toLowerCase();
  if (!(SCHEMES as readonly string[]).includes(scheme)) {
    throw new TransportUrlError(`transport_url scheme ${scheme}:// is not one of ${SCHEMES.map((s) => `${s}://`).join(', ')}`);
  }
  const tls = scheme === 'amqps';
  const hosts: BrokerHost[] = [];
  for (const part of m[2]!.split(',')) {
    if (!part) continue;
    hosts.push(parseHost(part, tls ? 5671 : 5672));
  }
  if (hosts.length === 0) throw new TransportUrlError(`transport_url: no host in ${redactUrl(text)}`);
  const path = m[3] ?? '';
  const vhost = path === '' || path === '/' ? '/' : decode(path.slice(1), 'the vhost');
  const query: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(m[4] ?? '')) query[k] = k in query ? `${query[k]},${v}` : v;
  return { scheme: scheme as TransportUrl['scheme'], hosts, vhost, query, tls };
}

function parseHost(part: string, defaultPort: number): BrokerHost {
  let rest = part;
  let username = '';
  let password = '';
  const at = part.lastIndexOf('@');
  if (at >= 0) {
    const creds = part.slice(0, at);
    rest = part.slice(at + 1);
    const colon = creds.indexOf(':');
    username = decode(colon >= 0 ? creds.slice(0, colon) : creds, 'a user name');
    password = colon >= 0 ? decode(creds.slice(colon + 1), 'a password') : '';
  }
  let hostname: string;
  let portText = '';
  if (rest.startsWith('[')) {
    const end = rest.indexOf(']');
    if (end < 0) throw new TransportUrlError(`transport_url: an IPv6 address without its closing bracket: ${rest}`);
    hostname = rest.slice(1, end);
    const after = rest.slice(end + 1);
    if (after && !after.startsWith(':')) throw new TransportUrlError(`transport_url: unexpected ${after} after [${hostname}]`);
    portText = after.slice(1);
  } else {
    const colon = rest.indexOf(':');
    hostname = colon >= 0 ? rest.slice(0, colon) : rest;
    portText = colon >= 0 ? rest.slice(colon + 1) : '';
  }
  if (!hostname) throw new TransportUrlError('transport_url: a host part has no host name');
  let port = defaultPort;
  if (portText !== '') {
    if (!/^\d+$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
      throw new TransportUrlError(`transport_url: port ${portText} of ${hostname} is not a number in 1-65535`);
    }
    port = Number(portText);
  }
  // oslo keeps an empty user or password as "none given"; kombu then fills in guest/guest.
  return { hostname, port, username: username || 'guest', password: password || 'guest' };
}

function decode(s: string, what: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw new TransportUrlError(`transport_url: ${what} has a bad percent escape`);
  }
}

/** The URL with every password replaced by `***`, for logs and messages. */
export function redactUrl(text: string): string {
  const hide = (t: string) => t.replace(/([/,])([^/,@]*?):[^,]*@/g, '$1$2:***@');
  // Without a scheme the credentials start the text.
  return text.includes('://') ? hide(text) : hide(`/${text}`).slice(1);
}

/** `host:port` (`[v6]:port`) for logs. */
export function hostLabel(h: Pick<BrokerHost, 'hostname' | 'port'>): string {
  return `${h.hostname.includes(':') ? `[${h.hostname}]` : h.hostname}:${h.port}`;
}
