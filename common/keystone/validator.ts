import type { Agent } from 'node:http';
import { commonError } from '../errors.js';
import { parseEndpoint, requestJson } from '../http-client.js';
import { identityRoot, withSessionToken } from './session.js';
import type { KeystoneSession, TokenInfo, TokenValidator } from './types.js';

interface TokenBody {
  token?: {
    expires_at?: string;
    user?: { id?: string; name?: string };
    project?: { id?: string; name?: string } | null;
    roles?: Array<{ name?: string }>;
  };
}

export interface ValidatorOptions {
  authUrl: string;
  /** The service's own session: Keystone answers token validation only to a valid token. */
  session: KeystoneSession;
  /** Roles that make a token admin (sees every project's resources). */
  adminRoles?: string[];
  /** How many validated tokens to remember (each until its expiry or `maxCacheSeconds`). */
  cacheSize?: number;
  maxCacheSeconds?: number;
  /** The connection pool, instead of the shared keep-alive one (common/http-client.ts). */
  agent?: Agent;
}

/**
 * Validates incoming tokens with `GET /v3/auth/tokens` and caches the answer until the token
 * expires (bounded by `maxCacheSeconds`), so a busy service asks Keystone once per token.
 */
export function tokenValidator(o: ValidatorOptions): TokenValidator {
  const ep = parseEndpoint(`${identityRoot(o.authUrl)}/v3/`, o.agent);
  const admin = new Set(o.adminRoles ?? ['admin']);
  const maxEntries = o.cacheSize ?? 1000;
  const maxAgeMs = (o.maxCacheSeconds ?? 300) * 1000;
  const cache = new Map<string, { info: TokenInfo; until: number }>();

  const ask = async (token: string): Promise<TokenInfo> => {
    const { status, body } = await withSessionToken(o.session, async (own) =>
      requestJson<TokenBody>(
        ep,
        {
          path: 'auth/tokens',
          headers: { 'x-auth-token': own, 'x-subject-token': token },
          accept: [401, 403, 404],
        },
        'keystone',
      ),
    );
    if (status === 403) throw commonError('AUTH_FAILED', 'keystone refused to validate tokens for this service user (it needs the service or admin role)');
    if (status !== 200 || !body.token) throw commonError('AUTH_INVALID_TOKEN', 'the authentication token is invalid or expired');
    const t = body.token;
    const roles = (t.roles ?? []).map((r) => r.name ?? '').filter(Boolean);
    return {
      user_id: t.user?.id ?? '',
      user_name: t.user?.name ?? '',
      project_id: t.project?.id ?? null,
      project_name: t.project?.name ?? null,
      roles,
      expires_at: new Date(t.expires_at ?? 0),
      is_admin: roles.some((r) => admin.has(r)),
    };
  };

  return {
    async validate(token: string) {
      if (!token || token.length > 8192) throw commonError('AUTH_INVALID_TOKEN', 'the authentication token is missing or malformed');
      const now = Date.now();
      const hit = cache.get(token);
      if (hit && hit.until > now) return hit.info;
      const info = await ask(token);
      if (info.expires_at.getTime() <= now) throw commonError('AUTH_INVALID_TOKEN', 'the authentication token has expired');
      if (cache.size >= maxEntries) cache.delete(cache.keys().next().value as string);
      cache.set(token, { info, until: Math.min(info.expires_at.getTime(), now + maxAgeMs) });
      return info;
    },
  };
}
