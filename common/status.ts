import Koa from 'koa';
import { errorMiddleware, logAppErrors } from './koa.js';
import type { Logger } from './log.js';
import { PROMETHEUS_CONTENT_TYPE, type MetricsRegistry } from './metrics.js';

/** One dependency /readyz asks about; `probe` throws (or resolves false) when it is down. */
export interface ReadinessCheck {
  name: string;
  probe(): Promise<boolean | void>;
}

export interface StatusAppDeps {
  registry: MetricsRegistry;
  checks: readonly ReadinessCheck[];
  log: Logger;
  /** How long one probe may take before it counts as down. */
  probeTimeoutMs?: number;
}

type CheckResult = { ok: true } | { ok: false; reason: string };

/**
 * The status endpoints every Berth service serves: /healthz (the process answers), /readyz (its
 * dependencies answer) and /metrics (Prometheus text). No auth: bind it to loopback or a
 * management network.
 */
export function createStatusApp(deps: StatusAppDeps): Koa {
  const app = new Koa();
  logAppErrors(app, deps.log);
  app.use(errorMiddleware(deps.log));
  app.use(statusRoutes(deps));
  return app;
}

/** The same three endpoints as middleware, for a service that mounts them on its own API. */
export function statusRoutes(deps: StatusAppDeps): Koa.Middleware {
  return async (ctx, next) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    switch (ctx.path) {
      case '/healthz':
        ctx.body = { status: 'ok' };
        return;
      case '/readyz': {
        const r = await readiness(deps.checks, deps.probeTimeoutMs ?? 3000);
        ctx.status = r.status;
        ctx.body = r.body;
        return;
      }
      case '/metrics':
        ctx.type = PROMETHEUS_CONTENT_TYPE;
        ctx.body = await deps.registry.render();
        return;
      default:
        return next();
    }
  };
}

/** /readyz's answer: 200 with every check, or 503 NOT_READY naming those down. */
export async function readiness(checks: readonly ReadinessCheck[], timeoutMs = 3000): Promise<{ status: number; body: unknown }> {
  const results = await runChecks(checks, timeoutMs);
  const down = Object.entries(results)
    .filter(([, r]) => !r.ok)
    .map(([name]) => name);
  return down.length
    ? { status: 503, body: { error: { code: 'NOT_READY', message: `not ready: ${down.join(', ')} down`, details: { down, checks: results } } } }
    : { status: 200, body: { status: 'ready', checks: results } };
}

async function runChecks(checks: readonly ReadinessCheck[], timeoutMs: number): Promise<Record<string, CheckResult>> {
  const entries = await Promise.all(checks.map(async (c): Promise<[string, CheckResult]> => [c.name, await runCheck(c, timeoutMs)]));
  return Object.fromEntries(entries);
}

async function runCheck(check: ReadinessCheck, timeoutMs: number): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, reason: `no answer within ${timeoutMs} ms` }), timeoutMs);
  });
  const probe = check.probe().then(
    (r): CheckResult => (r === false ? { ok: false, reason: 'reported down' } : { ok: true }),
    (err: unknown): CheckResult => ({ ok: false, reason: err instanceof Error ? err.message : String(err) }),
  );
  try {
    return await Promise.race([probe, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
