import { timingSafeEqual } from 'node:crypto';
import type Koa from 'koa';
import { BerthError, commonError } from '../common/errors.js';
import type { TokenValidator } from '../common/keystone/index.js';
import { agentError } from './errors.js';

export type AgentAuthStrategy = 'token' | 'keystone' | 'token+keystone';

export interface AgentKeystoneAuth {
  validator: TokenValidator;
  /** A token needs one of these roles: the agent drives the host, so tenant roles are not enough. */
  roles: readonly string[];
  /** Sent in `WWW-Authenticate: Keystone uri="…"` with a 401, as keystonemiddleware does. */
  authUri: string;
}

export interface AgentAuthOptions {
  strategy: AgentAuthStrategy;
  /** The bearer token of the token strategies; unused with `keystone`. */
  token: string;
  keystone?: AgentKeystoneAuth;
}

const usesToken = (s: AgentAuthStrategy): boolean => s !== 'keystone';
const usesKeystone = (s: AgentAuthStrategy): boolean => s !== 'token';

function bearerMatches(header: string, expected: Buffer): boolean {
  const given = Buffer.from(/^Bearer (.+)$/.exec(header)?.[1] ?? '');
  return expected.length > 0 && given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * Authenticates every request it guards: a bearer token compared in constant time, a Keystone
 * X-Auth-Token carrying one of the configured roles, or either. Refusals are the agent's error
 * body: 401 UNAUTHORIZED (no or bad credentials), 403 FORBIDDEN (a valid token without the role).
 */
export function agentAuth(o: AgentAuthOptions): Koa.Middleware {
  if (usesKeystone(o.strategy) && !o.keystone) {
    throw commonError('INVALID_CONFIG', `[agent] auth_strategy = ${o.strategy} needs a Keystone token validator`);
  }
  if (o.strategy === 'token' && !o.token) throw commonError('INVALID_CONFIG', 'the agent has no bearer token');
  const expected = Buffer.from(o.token);
  const keystone = usesKeystone(o.strategy) ? o.keystone : undefined;
  const roles = new Set(keystone?.roles ?? []);
  const challenge = keystone ? `Keystone uri="${keystone.authUri}"` : undefined;

  const refuse = (ctx: Koa.Context, message: string, reason: string): never => {
    if (challenge) ctx.set('www-authenticate', challenge);
    throw agentError('UNAUTHORIZED', message, { reason });
  };

  return async (ctx, next) => {
    if (usesToken(o.strategy) && bearerMatches(ctx.get('authorization'), expected)) return next();
    const subject = ctx.get('x-auth-token').trim();
    if (!keystone || !subject) {
      return refuse(
        ctx,
        keystone
          ? 'missing credentials: send a Keystone token in X-Auth-Token' + (usesToken(o.strategy) ? ' or the bearer token' : '')
          : 'missing or wrong bearer token',
        'missing',
      );
    }
    let info;
    try {
      info = await keystone.validator.validate(subject);
    } catch (err) {
      // Keystone unreachable or refusing the agent's own user is the agent's problem, not the caller's.
      if (err instanceof BerthError && err.code === 'AUTH_INVALID_TOKEN') return refuse(ctx, err.message, 'invalid_token');
      throw err;
    }
    if (!info.roles.some((r) => roles.has(r))) {
      throw agentError('FORBIDDEN', `the token of user ${info.user_name || info.user_id} has none of the roles the agent requires (${[...roles].join(', ')})`, {
        required_roles: [...roles],
      });
    }
    ctx.state.keystoneUser = info.user_name || info.user_id;
    return next();
  };
}
