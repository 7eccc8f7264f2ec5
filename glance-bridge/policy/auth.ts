import type Koa from 'koa';
import { BerthError, commonError } from '../../common/errors.js';
import type { TokenInfo, TokenValidator } from '../../common/keystone/index.js';
import type { Caller } from './access.js';

export interface KeystoneAuth {
  validator: TokenValidator;
  /** Where clients get tokens, sent in `WWW-Authenticate: Keystone uri="…"` with every 401. */
  authUri: string;
}

/**
 * Paths answered without a token, as Glance's paste pipeline leaves version discovery and
 * oslo's healthcheck outside keystonemiddleware; the status routes sit before this middleware.
 */
const OPEN_PATHS = new Set(['/', '/versions', '/healthcheck']);

/** The caller a validated token makes: its project owns what it creates; admin roles see all. */
export function callerFromToken(info: TokenInfo): Caller {
  if (!info.project_id) {
    throw commonError('AUTH_INVALID_TOKEN', 'the authentication token is not scoped to a project');
  }
  return { project: info.project_id, admin: info.is_admin };
}

/** A Keystone token, if the request carries one: `Authorization: Bearer` counts as X-Auth-Token. */
export function bearerOrAuthToken(ctx: Koa.Context): string {
  const bearer = /^Bearer\s+(\S+)$/i.exec(ctx.get('authorization'))?.[1];
  return (ctx.get('x-auth-token') || bearer || '').trim();
}

/**
 * keystonemiddleware's part in Glance's pipeline: every request but the open paths needs a valid
 * X-Auth-Token, and the identity comes from the token alone (X-Project-Id and X-Roles sent by the
 * client are ignored). Refusals are 401 with Berth's error body and the Keystone challenge.
 */
export function keystoneAuthMiddleware(auth: KeystoneAuth): Koa.Middleware {
  const challenge = `Keystone uri="${auth.authUri}"`;
  return async (ctx, next) => {
    if (OPEN_PATHS.has(ctx.path)) return next();
    try {
      const token = bearerOrAuthToken(ctx);
      if (!token) throw commonError('AUTH_REQUIRED', 'The request you have made requires authentication: send a Keystone token in X-Auth-Token');
      ctx.state.caller = callerFromToken(await auth.validator.validate(token));
    } catch (err) {
      if (err instanceof BerthError && err.status === 401) ctx.set('www-authenticate', challenge);
      throw err;
    }
    return next();
  };
}
