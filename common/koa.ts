import type Koa from 'koa';
import { timingSafeEqual, randomUUID } from 'node:crypto';
import { BerthError, commonError, internalErrorBody, invalidInput } from './errors.js';
import type { Logger } from './log.js';

/**
 * Turns thrown errors into Berth's one error body. An error marked `expose` (Koa's mark; a
 * BerthError below 500 or retryable is, and a catalog may expose its 5xx codes) is shown as it is;
 * anything else is logged and answered with a bare INTERNAL_ERROR.
 */
export function errorMiddleware(log: Logger): Koa.Middleware {
  return async (ctx, next) => {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        ctx.status = 404;
        ctx.body = { error: { code: 'NOT_FOUND', message: `no route for ${ctx.method} ${ctx.path}`, details: {} } };
      }
    } catch (err) {
      const status = err instanceof BerthError ? err.status : ((err as { status?: number }).status ?? 500);
      if (err instanceof BerthError && err.expose) {
        ctx.status = status;
        ctx.body = err.toBody();
        if (status >= 500 && err.retryable) log.warn({ err, code: err.code, path: ctx.path }, 'request failed');
        else if (status >= 500) log.error({ err, cause: err.cause instanceof Error ? err.cause.message : undefined, path: ctx.path }, 'request failed');
      } else if (!(err instanceof BerthError) && status < 500 && (err as { expose?: boolean }).expose) {
        ctx.status = status;
        ctx.body = { error: { code: 'BAD_REQUEST', message: (err as Error).message, details: {} } };
      } else {
        log.error({ err, path: ctx.path, method: ctx.method }, 'request failed');
        ctx.status = 500;
        ctx.body = internalErrorBody();
      }
    }
  };
}

/** Carries the caller's request id (X-Openstack-Request-Id) or makes one, and logs each request. */
export function requestIdMiddleware(log: Logger): Koa.Middleware {
  return async (ctx, next) => {
    const given = ctx.get('x-openstack-request-id');
    const id = /^req-[0-9a-f-]{36}$/.test(given) ? given : `req-${randomUUID()}`;
    ctx.state.requestId = id;
    ctx.set('x-openstack-request-id', id);
    const started = process.hrtime.bigint();
    await next();
    log.debug({ request_id: id, method: ctx.method, path: ctx.path, status: ctx.status, ms: Number(process.hrtime.bigint() - started) / 1e6 }, 'request');
  };
}

/** Reads a JSON body of at most `limit` bytes into ctx.request.body. */
export async function readJsonBody(ctx: Koa.Context, limit: number): Promise<unknown> {
  const type = ctx.get('content-type');
  if (type && !/^application\/([\w.+-]*\+)?json\b|^application\/openstack-images-v2\.1-json-patch\b/.test(type)) {
    throw commonError('UNSUPPORTED_MEDIA_TYPE', `expected a JSON body, got content-type ${type}`);
  }
  const declared = Number(ctx.get('content-length') || '0');
  if (declared > limit) throw commonError('BODY_TOO_LARGE', `request body over ${limit} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw commonError('BODY_TOO_LARGE', `request body over ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw invalidInput('request body is not valid JSON');
  }
}

/** Bearer-token check in constant time. */
export function bearerAuth(token: string): Koa.Middleware {
  const expected = Buffer.from(token);
  return async (ctx, next) => {
    const m = /^Bearer (.+)$/.exec(ctx.get('authorization'));
    const given = Buffer.from(m?.[1] ?? '');
    const ok = given.length === expected.length && timingSafeEqual(given, expected);
    if (!ok) throw commonError('UNAUTHORIZED', 'missing or wrong bearer token');
    await next();
  };
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export function isUuid(s: unknown): s is string {
  return typeof s === 'string' && UUID_RE.test(s);
}
export function requireUuid(s: unknown, what: string): string {
  if (!isUuid(s)) throw invalidInput(`${what} must be a lowercase UUID with dashes`, { field: what });
  return s;
}

const CLIENT_GONE = new Set(['ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET', 'EPIPE', 'ECONNABORTED']);

/**
 * Routes the errors Koa reports outside the middleware chain (a response body stream failing
 * after the headers went out) to the service's log instead of Koa's default, which prints stack
 * traces to stderr. A client that hangs up during a download is routine (dockerd abandons blob
 * requests, users press Ctrl-C) and logged at debug; anything else is an error.
 */
export function logAppErrors(app: Koa, log: Logger): void {
  app.on('error', (err: NodeJS.ErrnoException, ctx?: Koa.Context) => {
    const where = { method: ctx?.method, path: ctx?.path };
    if (err.code && CLIENT_GONE.has(err.code)) log.debug({ ...where, code: err.code }, 'client went away during the response');
    else log.error({ ...where, err }, 'request failed after its response started');
  });
}
