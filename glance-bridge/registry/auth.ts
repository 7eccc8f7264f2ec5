import { readBody } from '../../common/http-client.js';
import type { Credentials } from '../../common/registry-credentials.js';
import { imageError } from '../errors.js';
import { describeRegistryError, getFollowingRedirects, type SendOptions } from './transport.js';

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a WWW-Authenticate header (RFC 7235): `Bearer realm="…",service="…",scope="…"`.
 * Quoted values may hold commas (`scope="repository:a:pull,push"`), so this is a small tokenizer
 * rather than a split on commas.
 */
export function parseChallenge(header: string): Challenge | null {
  const m = /^\s*([A-Za-z][\w-]*)\s*(.*)$/s.exec(header);
  if (!m) return null;
  const params: Record<string, string> = {};
  const re = /\s*([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(?:,|$)/gy;
  const rest = m[2] ?? '';
  let p: RegExpExecArray | null;
  while (re.lastIndex < rest.length && (p = re.exec(rest))) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
  }
  return { scheme: m[1]!.toLowerCase(), params };
}

export function basicAuthorization(creds: Credentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
}

/** Where a challenge came from, and what may be sent in answer to it. */
export interface AuthContext {
  /** The registry's base URL (scheme and host the reference named). */
  registry: URL;
  /** Credentials configured for this registry, if any: never sent anywhere else. */
  creds: Credentials | null;
  /** Whether the registry is spoken to over plain HTTP ([registry] insecure_hosts). */
  insecure: boolean;
  send: Omit<SendOptions, 'headers'>;
}

/** Token hosts of registries whose token service is on another host than the registry. */
const TOKEN_HOSTS: Record<string, string> = { 'registry-1.docker.io': 'auth.docker.io' };

const isLoopbackName = (hostname: string): boolean => {
  const host = hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
};

/**
 * May the registry's credentials go to this token realm? Only to the registry's own host (or its
 * known token host, auth.docker.io for Docker Hub), and only over HTTPS, or over HTTP when the
 * registry itself is a plain-HTTP registry on loopback (a development registry). A realm elsewhere
 * is asked for an anonymous token: a registry must not be able to collect the credentials of
 * another one, nor have them sent in clear text.
 */
export function credentialsMayGoTo(realm: URL, ctx: AuthContext): boolean {
  const host = realm.hostname.toLowerCase();
  const own = ctx.registry.hostname.toLowerCase();
  if (host !== own && TOKEN_HOSTS[own] !== host) return false;
  if (realm.protocol === 'https:') return true;
  return ctx.insecure && ctx.registry.protocol === 'http:' && isLoopbackName(own);
}

/**
 * Answers a challenge of the registry `ctx.registry`: Basic with that registry's own credentials,
 * or a token from the challenge's realm (the Docker token protocol,
 * https://distribution.github.io/distribution/spec/auth/token/), asked for with the credentials
 * only where credentialsMayGoTo allows, else anonymously. Returns the Authorization header value
 * to retry with.
 */
export async function authorizationFor(challenge: Challenge, scope: string, ctx: AuthContext): Promise<string> {
  const { creds } = ctx;
  const registry = ctx.registry.host;
  if (challenge.scheme === 'basic') {
    if (!creds)
      throw imageError(
        'REGISTRY_AUTH_FAILED',
        `registry ${registry} requires a user name and password, and none is configured for it ([registry] credentials_file)`,
        { registry },
      );
    return basicAuthorization(creds);
  }
  if (challenge.scheme !== 'bearer') throw imageError('REGISTRY_AUTH_FAILED', `unsupported registry auth scheme ${challenge.scheme}`);
  const realm = challenge.params.realm;
  let url: URL;
  try {
    url = new URL(realm ?? '');
  } catch {
    throw imageError('REGISTRY_AUTH_FAILED', `registry auth challenge has no usable realm (${JSON.stringify(realm)})`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw imageError('REGISTRY_AUTH_FAILED', `token realm ${url.protocol} is not HTTP`);
  // A token fetched over plain HTTP can be read on the way; only a plain-HTTP registry may ask for that.
  if (url.protocol === 'http:' && !(ctx.insecure && ctx.registry.protocol === 'http:')) {
    throw imageError(
      'REGISTRY_DESTINATION_REFUSED',
      `registry ${registry} named a token realm over plain HTTP (${url.host}); only a registry in [registry] insecure_hosts may`,
      { registry, realm: url.origin },
    );
  }
  if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
  url.searchParams.set('scope', challenge.params.scope ?? scope);

  const withCreds = creds !== null && credentialsMayGoTo(url, ctx);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (withCreds) headers.authorization = basicAuthorization(creds);
  const res = await getFollowingRedirects(url, { ...ctx.send, headers });
  // What a token service on another host says is not repeated: it may be anything the tenant pointed us at.
  const disclose = url.hostname.toLowerCase() === ctx.registry.hostname.toLowerCase() && res.url.origin === url.origin;
  if (res.status === 401 || res.status === 403) {
    throw imageError(
      'REGISTRY_AUTH_FAILED',
      `token service ${url.host} refused ${withCreds ? 'the configured credentials' : 'anonymous access'}: ${await describeRegistryError(res, disclose)}`,
      { realm: url.origin },
    );
  }
  if (res.status !== 200) {
    res.body.destroy();
    throw imageError('REGISTRY_ERROR', `token service ${url.host} answered HTTP ${res.status}`, { realm: url.origin, status: res.status });
  }
  let body: { token?: unknown; access_token?: unknown };
  try {
    body = JSON.parse((await readBody(res.body, 1024 * 1024)).toString('utf8')) as typeof body;
  } catch {
    throw imageError('REGISTRY_AUTH_FAILED', `token service ${url.host} did not answer JSON`, { realm: url.origin });
  }
  const token = typeof body.token === 'string' ? body.token : typeof body.access_token === 'string' ? body.access_token : '';
  if (!token) throw imageError('REGISTRY_AUTH_FAILED', `token service ${url.host} sent no token`, { realm: url.origin });
  return `Bearer ${token}`;
}
