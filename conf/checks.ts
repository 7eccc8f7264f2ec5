import { isIPv4, isIPv6 } from 'node:net';
import { parseFlavors } from './flavors.js';
import { parseAllowEntry } from '../common/address-policy.js';
import { loadCredentials } from '../common/registry-credentials.js';
import { brokerChecks, transportUrlProblem } from './broker-checks.js';
import type { OptionSpec } from './options.js';

/**
 * Validation of a loaded configuration beyond each option's type: the format of addresses, URLs
 * and database connections (formatProblem), and checks across options (crossChecks).
 */

/** The URL schemes each URL-valued option is read with; other URL options take http(s). */
const SCHEMES: Record<string, string[]> = {
  'DEFAULT.transport_url': ['rabbit', 'amqp', 'amqps'],
  'database.connection': ['sqlite', 'postgres', 'postgresql'],
  'image_store.connection': ['sqlite', 'postgres', 'postgresql'],
  'agent.url': ['http', 'https', 'unix'],
  'docker.host_url': ['unix', 'http', 'https'],
  'serial_console.base_url': ['ws', 'wss', 'http', 'https'],
};

/**
 * HOST:PORT with a port of 1-65535, or 0 where a service listens (the system picks a free port,
 * as tests and one-off stacks ask); IPv6 hosts in brackets. '' when it is one, else the problem.
 */
function hostPortProblem(text: string, listening: boolean): string {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d+)$/.exec(text);
  if (!m) return `expected HOST:PORT, got ${JSON.stringify(text)}`;
  const host = m[1]!;
  if (host.startsWith('[') ? !isIPv6(host.slice(1, -1)) : /^[\d.]+$/.test(host) && !isIPv4(host))
    return `${host} is not an IP address, in ${JSON.stringify(text)}`;
  const port = Number(m[2]);
  const lowest = listening ? 0 : 1;
  if (port < lowest || port > 65535) return `port ${port} is out of range ${lowest}-65535, in ${JSON.stringify(text)}`;
  return '';
}

/**
 * What start-up would trip on beyond the type: listen addresses (HOST:PORT, or a unix socket
 * path where the option takes one), URL schemes and ports, database URLs.
 */
export function formatProblem(section: string, key: string, spec: OptionSpec, value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  if (key.endsWith('listen') || key === 'image_registry') {
    if (value.startsWith('/') && /unix socket/.test(spec.help)) return undefined;
    if (value.startsWith('/')) return `a unix socket path is not accepted here: expected HOST:PORT, got ${JSON.stringify(value)}`;
    return hostPortProblem(value, key.endsWith('listen')) || undefined;
  }
  const schemes = SCHEMES[`${section}.${key}`] ?? (spec.type === 'url' || key === 'auth_url' ? ['http', 'https'] : undefined);
  if (!schemes) return undefined;
  const shown = spec.secret ? '(a secret value, not shown)' : JSON.stringify(value);
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1]?.toLowerCase();
  if (!scheme) return `expected a URL (${schemes.map((x) => `${x}://`).join(', ')}), got ${shown}`;
  // SQLAlchemy-style dialects: postgresql+psycopg2:// is postgresql.
  const base = scheme.replace(/\+.*$/, '');
  if (!schemes.includes(base)) return `the scheme ${scheme}:// is not one of ${schemes.map((x) => `${x}://`).join(', ')}`;
  if (base === 'sqlite' || base === 'unix') return undefined;
  if (key === 'transport_url') return transportUrlProblem(value) || undefined;
  let u: URL;
  try {
    u = new URL(value.replace(/^[^:]+:/, 'http:'));
  } catch {
    return `not a URL: ${shown}`;
  }
  if (!u.hostname) return `no host in ${shown}`;
  if (u.port !== '' && (Number(u.port) < 1 || Number(u.port) > 65535)) return `port ${u.port} is out of range 1-65535`;
  return undefined;
}

/** Rules that tie options together; each problem names every option involved. */
export function crossChecks(c: Record<string, Record<string, unknown>>): string[] {
  const problems: string[] = [];
  if (c.nova!.control_plane === 'nova') {
    const missing = ['auth_url', 'username', 'password'].filter((k) => !c.placement![k]);
    if (missing.length)
      problems.push(`[nova] control_plane = nova needs [placement] ${missing.join(', ')} (the service user that manages this node's resource provider)`);
  }
  // Services validating incoming tokens do it as the [keystone_authtoken] service user.
  for (const section of ['image_store', 'agent'] as const) {
    const strategy = c[section]!.auth_strategy;
    if (strategy !== 'keystone' && strategy !== 'token+keystone') continue;
    const missing = ['auth_url', 'username', 'password'].filter((k) => !c.keystone_authtoken![k]);
    if (missing.length) problems.push(`[${section}] auth_strategy = ${strategy} needs [keystone_authtoken] ${missing.join(', ')}`);
  }
  if (c.agent!.auth_strategy !== 'token' && !(c.agent!.keystone_roles as string[]).length) {
    problems.push(`[agent] auth_strategy = ${String(c.agent!.auth_strategy)} needs at least one role in [agent] keystone_roles`);
  }
  for (const section of ['placement', 'keystone_authtoken', 'glance'] as const) {
    const auth = c[section]!;
    if (auth.auth_url && !(auth.username && auth.password)) problems.push(`[${section}] auth_url is set but username or password is not`);
  }
  problems.push(...brokerChecks(c.DEFAULT!.transport_url as string, c.oslo_messaging_rabbit as unknown as Parameters<typeof brokerChecks>[1]));
  problems.push(...registryChecks(c.registry!));
  problems.push(...noauthChecks(c.image_store!));
  problems.push(...parseFlavors(c.DEFAULT!.flavors as string[]).problems);
  return problems;
}

/**
 * noauth believes the X-Project-Id and X-Roles headers: on an address others reach, any caller
 * would act as any project or as admin. It is refused there unless the operator says every
 * client is trusted.
 */
function noauthChecks(store: Record<string, unknown>): string[] {
  if (store.auth_strategy !== 'noauth' || store.noauth_beyond_loopback) return [];
  return (['listen', 'registry_listen'] as const)
    .filter((key) => typeof store[key] === 'string' && store[key] !== '' && !isLoopbackListen(store[key] as string))
    .map(
      (key) =>
        `[image_store] ${key} = ${String(store[key])} is not a loopback address, and auth_strategy = noauth lets any caller act as any project or as admin: use auth_strategy = keystone, listen on loopback, or set noauth_beyond_loopback = true on a network where every client is trusted`,
    );
}

/** HOST:PORT whose host is loopback (127.0.0.0/8, ::1, localhost). */
function isLoopbackListen(listen: string): boolean {
  const host = (/^\[(.*)\]:\d*$/.exec(listen)?.[1] ?? listen.replace(/:\d*$/, '')).toLowerCase();
  return host === 'localhost' || host === '::1' || (isIPv4(host) && host.startsWith('127.'));
}

/**
 * [registry] credentials and allowlist. Before credentials_file, username/password went to any
 * registry that asked (and to any token realm it named); they are refused without the
 * credentials_host they belong to, saying how to upgrade, rather than silently sent nowhere.
 */
function registryChecks(r: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const username = String(r.username ?? '');
  const host = String(r.credentials_host ?? '');
  if ((username || r.password) && !host) {
    problems.push(
      '[registry] username/password are sent only to the registry named in [registry] credentials_host, which is not set. ' +
        'Set credentials_host = HOST[:PORT] of the registry they belong to (docker.io for Docker Hub), ' +
        'or better, move them to a Docker config.json ({"auths": {"HOST[:PORT]": {"auth": "BASE64(USER:PASSWORD)"}}}) named by [registry] credentials_file and remove username/password',
    );
  } else if (host && !username) {
    problems.push(`[registry] credentials_host = ${host} needs [registry] username and password`);
  } else if (host && !/^[a-zA-Z0-9.-]+(:\d{1,5})?$|^\[[0-9a-fA-F:.]+\](:\d{1,5})?$/.test(host)) {
    problems.push(`[registry] credentials_host: expected HOST[:PORT], got ${JSON.stringify(host)}`);
  }
  for (const entry of (r.allowed_internal as string[] | undefined) ?? []) {
    const parsed = parseAllowEntry(entry);
    if (typeof parsed === 'string') problems.push(`[registry] allowed_internal: ${parsed}`);
  }
  // A file named through $state_path is read once interpolated, when the image service starts.
  if ((r.credentials_file && !String(r.credentials_file).includes('$')) || (username && host)) {
    try {
      loadCredentials({
        file: String(r.credentials_file ?? '').includes('$') ? '' : String(r.credentials_file ?? ''),
        legacy: { host, username, password: String(r.password ?? '') },
      });
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  return problems;
}
