import { commonError, describeError } from '../errors.js';
import type { EndpointInterface, KeystoneCredentials, KeystoneSession } from './types.js';

/** The part of pkgcloud's OpenStack identity Berth relies on. */
interface PkgcloudIdentity {
  authorize(cb: (err?: Error & { statusCode?: number }) => void): void;
  token?: { id: string; expires: Date };
  serviceCatalog?: { services: Record<string, PkgcloudService> };
}
interface PkgcloudService {
  type: string;
  endpoints: Array<{ interface?: string; region?: string; region_id?: string; url?: string }>;
}
interface PkgcloudIdentityCtor {
  new (options: Record<string, unknown>): PkgcloudIdentity;
}

/** Renew this long before the token expires, so a call never starts with a dying token. */
const RENEW_MARGIN_MS = 5 * 60 * 1000;

/** The identity root pkgcloud expects: the URL without a trailing `/v3`. */
export function identityRoot(authUrl: string): string {
  let url: URL;
  try {
    url = new URL(authUrl);
  } catch {
    throw commonError('INVALID_CONFIG', `keystone auth_url is not a URL: ${JSON.stringify(authUrl)}`);
  }
  return url.href.replace(/\/+$/, '').replace(/\/v3$/, '');
}

/**
 * pkgcloud's OpenStack identity, loaded on first use: pkgcloud pulls in ~0.3 s of modules, which
 * only a process that really authenticates to Keystone should pay (the CLI starts without it).
 */
let identityCtor: Promise<PkgcloudIdentityCtor> | null = null;
function loadIdentity(): Promise<PkgcloudIdentityCtor> {
  identityCtor ??= import('pkgcloud/lib/pkgcloud/openstack/context/index.js').then((m) => (m as unknown as { Identity: PkgcloudIdentityCtor }).Identity);
  return identityCtor;
}

/** A service session over pkgcloud's Keystone v3 password authentication. */
export function keystoneSession(creds: KeystoneCredentials): KeystoneSession {
  for (const key of ['auth_url', 'username', 'password', 'project_name'] as const) {
    if (!creds[key]) throw commonError('INVALID_CONFIG', `keystone credentials: ${key} is not set`, { option: key });
  }
  const root = identityRoot(creds.auth_url);
  let identity: PkgcloudIdentity | null = null;
  let pending: Promise<PkgcloudIdentity> | null = null;

  const authorize = async (): Promise<PkgcloudIdentity> => {
    const Identity = await loadIdentity();
    const id = new Identity({
      url: root,
      keystoneAuthVersion: 'v3',
      username: creds.username,
      password: creds.password,
      domainName: creds.user_domain_name,
      tenantName: creds.project_name,
      projectDomainName: creds.project_domain_name,
    });
    return new Promise((resolve, reject) =>
      id.authorize((err) => {
        if (!err) return resolve(id);
        const status = err.statusCode ?? 0;
        if (status === 401 || status === 403) {
          return reject(commonError('AUTH_FAILED', `keystone at ${root} refused the credentials of user ${creds.username} (HTTP ${status})`));
        }
        reject(commonError('SERVICE_UNREACHABLE', `keystone at ${root}: ${describeError(err)}`, {}, err));
      }),
    );
  };

  const current = async (): Promise<PkgcloudIdentity> => {
    if (identity?.token && identity.token.expires.getTime() - Date.now() > RENEW_MARGIN_MS) return identity;
    pending ??= authorize()
      .then((id) => {
        identity = id;
        return id;
      })
      .finally(() => {
        pending = null;
      });
    return pending;
  };

  return {
    async token() {
      const id = await current();
      if (!id.token?.id) throw commonError('AUTH_FAILED', `keystone at ${root} returned no token`);
      return id.token.id;
    },
    async endpoint(serviceType: string, iface: EndpointInterface = 'public') {
      const id = await current();
      const services = Object.values(id.serviceCatalog?.services ?? {});
      const svc = services.find((s) => s.type === serviceType);
      const ep = svc?.endpoints.find((e) => e.interface === iface && (!creds.region_name || (e.region_id ?? e.region) === creds.region_name));
      if (!ep?.url) {
        throw commonError(
          'ENDPOINT_NOT_FOUND',
          `the keystone catalog has no ${iface} ${serviceType} endpoint${creds.region_name ? ` in region ${creds.region_name}` : ''}`,
          { service_type: serviceType },
        );
      }
      return ep.url.replace(/\/+$/, '');
    },
    invalidate() {
      identity = null;
    },
  };
}

/**
 * Sends with the session's token; a 401 means the token died before its expiry (revoked, Keystone
 * restarted), so the session authenticates once more and the request is sent again. A second
 * 401 is the caller's to report. `discard` releases the first response (e.g. drains its body).
 */
export async function withSessionToken<R extends { status: number }>(
  session: KeystoneSession,
  send: (token: string) => Promise<R>,
  discard?: (r: R) => void,
): Promise<R> {
  const first = await send(await session.token());
  if (first.status !== 401) return first;
  discard?.(first);
  session.invalidate();
  return send(await session.token());
}
