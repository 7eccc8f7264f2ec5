import type Koa from 'koa';
import type { InstancePowerState } from './client/types.js';
import { powerStateOf } from './instances.js';
import { CollectedGauge, Counter, Histogram, MetricsRegistry } from '../common/metrics.js';
import type { ContainerRuntime } from './runtime/types.js';

/** What the agent counts; served at GET /metrics (docs/agent-api.md). */
export interface AgentMetrics {
  registry: MetricsRegistry;
  requests: Counter;
  duration: Histogram;
  imageFetches: Counter;
  imageCacheHits: Counter;
  snapshots: Counter;
}

const POWER_STATES: readonly InstancePowerState[] = ['running', 'paused', 'stopped', 'crashed'];
/** Seconds; from a cached GET to an image load or a slow stop. */
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export function createAgentMetrics(runtime: ContainerRuntime): AgentMetrics {
  const registry = new MetricsRegistry();
  const requests = registry.register(new Counter('berth_agent_requests_total', 'HTTP requests answered, by method, route template and status.'));
  const duration = registry.register(
    new Histogram('berth_agent_request_duration_seconds', 'Time to answer an HTTP request, by method and route template.', DURATION_BUCKETS),
  );
  const imageFetches = registry.register(
    new Counter(
      'berth_agent_image_fetches_total',
      'Image fetches from the image store into the runtime, by result (pulled from its registry endpoint, loaded from its archive, failed).',
    ),
  );
  const imageCacheHits = registry.register(
    new Counter('berth_agent_image_cache_hits_total', 'Image requests the runtime already had, with nothing downloaded.'),
  );
  const snapshots = registry.register(new Counter('berth_agent_snapshots_total', 'Finished snapshots, by result (active, failed).'));
  registry.register(
    new CollectedGauge('berth_agent_runtime_up', '1 when the container runtime answers, else 0.', async () => [[{}, (await runtime.ping()) ? 1 : 0]]),
  );
  registry.register(
    new CollectedGauge('berth_agent_instances', 'Instances on this host by power state; absent while the runtime is unreachable.', async () => {
      const all = await runtime.list().catch(() => null);
      if (!all) return [];
      const counts = new Map<InstancePowerState, number>(POWER_STATES.map((s) => [s, 0]));
      for (const c of all) counts.set(powerStateOf(c), (counts.get(powerStateOf(c)) ?? 0) + 1);
      return [...counts].map(([power_state, n]) => [{ power_state }, n]);
    }),
  );
  return { registry, requests, duration, imageFetches, imageCacheHits, snapshots };
}

/**
 * Outermost middleware, so it sees the status the error middleware settled on. The route label
 * is the router's template (`/v1/instances/:uuid`), never the raw path, to keep label sets bounded.
 */
export function requestMetrics(m: AgentMetrics): Koa.Middleware {
  return async (ctx, next) => {
    const started = process.hrtime.bigint();
    try {
      await next();
    } finally {
      const route = (ctx as { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
      const labels = { method: ctx.method, route: String(route) };
      m.requests.inc({ ...labels, status: String(ctx.status) });
      m.duration.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
    }
  };
}
