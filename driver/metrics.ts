import { CollectedGauge, Counter, Histogram, MetricsRegistry } from '../common/metrics.js';
import type { RpcObserver } from './rpc/server.js';

/** Seconds; from a ping answered at once to a build that loads an image. */
const RPC_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

const BUILD_METHOD = 'build_and_run_instance';

export type InstanceCounter = () => Promise<Array<[{ vm_state: string }, number]>>;

/** What the compute node counts; served at GET /metrics of its status server. */
export class DriverMetrics {
  readonly registry = new MetricsRegistry();
  private readonly messages = this.registry.register(
    new Counter(
      'berth_rpc_messages_total',
      'RPC messages received, by method, kind (call, cast) and outcome (ok, failure, malformed, duplicate); malformed ones have method "unknown".',
    ),
  );
  private readonly latency = this.registry.register(
    new Histogram('berth_rpc_duration_seconds', 'Time from dispatch to the end of the work (the reply or the ack), by method.', RPC_BUCKETS),
  );
  private readonly failures = this.registry.register(
    new Counter('berth_instance_failures_total', 'Faults recorded on instances, by code (the nova exception name, e.g. ImageNotFound).'),
  );
  private readonly notifications = this.registry.register(
    new Counter('berth_notifications_sent_total', 'Notifications published to the broker (versioned and legacy each count).'),
  );
  private buildsInFlight = 0;

  constructor(countInstances: InstanceCounter) {
    this.registry.register(new CollectedGauge('berth_builds_in_flight', 'Builds being run now.', () => Promise.resolve([[{}, this.buildsInFlight]])));
    this.registry.register(new CollectedGauge('berth_instances', 'Instances of this host that are not deleted, by vm_state.', countInstances));
    // Present from the first scrape, so a rate() over a fresh node reads 0 rather than nothing.
    this.notifications.inc({}, 0);
  }

  /**
   * The node's capacity (after allocation ratios and reserved amounts) and what instances claim,
   * by resource class, read from the claims at each scrape.
   */
  watchCapacity(capacity: () => Promise<Record<string, unknown>>): void {
    const read = async (key: 'capacity' | 'used'): Promise<Array<[{ resource: string }, number]>> => {
      const resources = ((await capacity()).resources ?? {}) as Record<string, { capacity: number; used: number }>;
      return Object.entries(resources).map(([resource, r]) => [{ resource }, Number(r[key])]);
    };
    this.registry.register(
      new CollectedGauge(
        'berth_node_resource_capacity',
        'What the node offers, by resource class (VCPU, MEMORY_MB, DISK_GB), after allocation ratios and reserved amounts.',
        () => read('capacity'),
      ),
    );
    this.registry.register(new CollectedGauge('berth_node_resource_used', "What this node's instances claim, by resource class.", () => read('used')));
  }

  readonly rpc: RpcObserver = {
    started: (method, call) => {
      const started = process.hrtime.bigint();
      if (method === BUILD_METHOD) this.buildsInFlight++;
      return (outcome) => {
        if (method === BUILD_METHOD) this.buildsInFlight--;
        if (outcome === null) return;
        this.messages.inc({ method, kind: call ? 'call' : 'cast', outcome });
        this.latency.observe({ method }, Number(process.hrtime.bigint() - started) / 1e9);
      };
    },
    skipped: (method, call, outcome) => {
      this.messages.inc({ method: method ?? 'unknown', kind: call ? 'call' : 'cast', outcome });
    },
  };

  instanceFailed(code: string): void {
    this.failures.inc({ code: code || 'unknown' });
  }

  notificationSent(): void {
    this.notifications.inc();
  }
}
