import { readFileSync } from 'node:fs';

/** A user name and password for one registry. */
export interface Credentials {
  username: string;
  password: string;
}

/** How image references name Docker Hub (glance-bridge/registry/reference.ts DOCKER_HUB). */
const DOCKER_HUB = 'docker.io';

/**
 * Registry credentials, per registry, from a file in Docker's config.json format:
 *
 *   {"auths": {"registry.example.com": {"auth": "<base64 of user:password>"},
 *              "other.example.com:5000": {"username": "u", "password": "p"}}}
 *
 * Keys are `HOST[:PORT]` as written in image references; `https://` and a path are tolerated
 * (docker login writes `https://index.docker.io/v1/` for Docker Hub). Each set is sent to its
 * registry only (see glance-bridge/registry/auth.ts for token realms). In common/ so that
 * `berth conf check` can read the file as the image service will.
 */
export type CredentialTable = ReadonlyMap<string, Credentials>;

/** Docker Hub goes by several names; references use DOCKER_HUB. */
const HUB_NAMES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/** The `HOST[:PORT]` a config.json key or a reference's registry names, lowercased. */
export function registryKey(key: string): string {
  const host = key
    .trim()
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
  return HUB_NAMES.has(host) ? DOCKER_HUB : host;
}

/** Parses config.json text; throws an Error naming `origin` and the entry for anything unusable. */
export function parseCredentials(text: string, origin: string): Map<string, Credentials> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`${origin}: not JSON (${(err as Error).message})`);
  }
  const auths = (doc as { auths?: unknown } | null)?.auths;
  if (typeof auths !== 'object' || auths === null || Array.isArray(auths))
    throw new Error(`${origin}: no "auths" object (Docker's config.json format: {"auths": {"HOST[:PORT]": {"auth": "base64(user:password)"}}})`);
  const table = new Map<string, Credentials>();
  for (const [key, entry] of Object.entries(auths as Record<string, unknown>)) {
    const where = `${origin}: auths[${JSON.stringify(key)}]`;
    const e = (entry ?? {}) as { auth?: unknown; username?: unknown; password?: unknown; identitytoken?: unknown };
    let creds: Credentials;
    if (typeof e.auth === 'string' && e.auth !== '') {
      const plain = Buffer.from(e.auth, 'base64').toString('utf8');
      const colon = plain.indexOf(':');
      if (colon <= 0) throw new Error(`${where}: "auth" is not base64 of USER:PASSWORD`);
      creds = { username: plain.slice(0, colon), password: plain.slice(colon + 1) };
    } else if (typeof e.username === 'string' && e.username !== '' && typeof e.password === 'string') {
      creds = { username: e.username, password: e.password };
    } else if (e.identitytoken !== undefined) {
      throw new Error(`${where}: identity tokens are not supported; give "auth" or "username" and "password"`);
    } else {
      throw new Error(`${where}: needs "auth" (base64 of USER:PASSWORD) or "username" and "password"`);
    }
    const host = registryKey(key);
    if (!host) throw new Error(`${where}: no registry host in the key`);
    if (table.has(host)) throw new Error(`${where}: a second entry for registry ${host}`);
    table.set(host, creds);
  }
  return table;
}

/** The table from [registry] credentials_file, plus the legacy username/password for credentials_host. */
export function loadCredentials(opts: { file: string; legacy?: { host: string; username: string; password: string } }): Map<string, Credentials> {
  let table = new Map<string, Credentials>();
  if (opts.file) {
    let text: string;
    try {
      text = readFileSync(opts.file, 'utf8');
    } catch (err) {
      throw new Error(`[registry] credentials_file ${opts.file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    table = parseCredentials(text, `[registry] credentials_file ${opts.file}`);
  }
  const legacy = opts.legacy;
  if (legacy?.username) {
    const host = registryKey(legacy.host);
    if (table.has(host))
      throw new Error(`[registry] credentials_host ${legacy.host}: that registry also has credentials in [registry] credentials_file; keep one`);
    table.set(host, { username: legacy.username, password: legacy.password });
  }
  return table;
}
