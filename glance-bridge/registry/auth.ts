import { readBody } from '../../common/http-client.js';
import { imageError } from '../errors.js';
import { describeRegistryError, getFollowingRedirects } from './transport.js';

export interface Challenge { scheme: string; params: Record<string, string> }
export interface Credentials { username: string; password: string }

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
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3] ?? '';
  }
  return { scheme: m[1]!.toLowerCase(), params };
}

export function basicAuthorization(creds: Credentials): string {
  return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
}

/**
 * Gets a token from the challenge's realm (the Docker token protocol,
 * https://distribution.github.io/distribution/spec/auth/token/): anonymous, or with basic
 * credentials when configured. Returns the Authorization header value to retry with.
 */
export async function authorizationFor(challenge: Challenge, scope: string, creds: Credentials | null, timeoutMs: number): Promise<string> {
  if (challenge.scheme === 'basic') {
    if (!creds) throw imageError('REGISTRY_AUTH_FAILED', 'registry requires a user name and password ([registry] username/password)');
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
  if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
  url.searchParams.set('scope', challenge.params.scope ?? scope);

  const headers: Record<string, string> = { accept: 'application/json' };
  if (creds) headers.authorization = basicAuthorization(creds);
  const res = await getFollowingRedirects(url, { headers, timeoutMs });
  if (res.status === 401 || res.status === 403) {
    throw imageError('REGISTRY_AUTH_FAILED', `token service ${url.host} refused ${creds ? 'the configured credentials' : 'anonymous access'}: ${await describeRegistryError(res)}`, { realm: url.origin });
  }
  if (res.status !== 200) {
    res.body.resume();
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
