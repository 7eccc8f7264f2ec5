/**
 * Keystone v3, as Berth uses it: a service session that holds a project-scoped token and the
 * service catalog for outgoing calls (Placement, Glance), and a validator for tokens that come in.
 * The session is implemented over pkgcloud (session.ts); everything else depends on these types.
 */
export interface KeystoneCredentials {
  /** Identity endpoint, e.g. http://127.0.0.1:5000/v3 (a trailing /v3 is optional). */
  auth_url: string;
  username: string;
  password: string;
  project_name: string;
  user_domain_name: string;
  project_domain_name: string;
  /** Catalog region to pick endpoints from; empty = the first region offering the service. */
  region_name: string;
}

export type EndpointInterface = 'public' | 'internal' | 'admin';

export interface KeystoneSession {
  /** A valid token, fetched on first use and again shortly before it expires. */
  token(): Promise<string>;
  /** The catalog URL of a service type (`placement`, `image`, ...), without a trailing slash. */
  endpoint(serviceType: string, iface?: EndpointInterface): Promise<string>;
  /** Forgets the token, e.g. after a 401, so the next `token()` authenticates again. */
  invalidate(): void;
}

/** What a validated incoming token says about its bearer. */
export interface TokenInfo {
  user_id: string;
  user_name: string;
  project_id: string | null;
  project_name: string | null;
  roles: string[];
  expires_at: Date;
  is_admin: boolean;
}

export interface TokenValidator {
  /** Resolves the token's identity, or throws BerthError `AUTH_INVALID_TOKEN` (401). */
  validate(token: string): Promise<TokenInfo>;
}
