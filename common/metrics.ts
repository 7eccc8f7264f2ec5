import client from 'prom-client';

/**
 * Berth's metrics over prom-client, the maintained Prometheus client: each registry also carries
 * the process metrics prom-client collects (resident memory, CPU seconds, open file descriptors,
 * event-loop lag, GC durations, heap) beside the service's own counters, histograms and gauges,
 * and prom-client writes the text exposition format 0.0.4.
 *
 * A metric's label names are those of its first observation (every call site of a metric passes
 * the same label keys); until then it is shown with its HELP and TYPE and no samples.
 */
type Labels = Record<string, string>;

/** prom-client's view of a metric: what Registry.metrics() reads from each registered one. */
interface Exposed {
  name: string;
  get(): Promise<client.MetricObjectWithValues<client.MetricValue<string>>>;
}

/** Registered at once, backed by a prom-client metric made at the first observation. */
abstract class LazyMetric<M extends { get(): Promise<client.MetricObjectWithValues<client.MetricValue<string>>> }> implements Exposed {
  protected inner: M | null = null;
  constructor(
    readonly name: string,
    protected readonly help: string,
    private readonly type: client.MetricType,
  ) {}

  protected abstract make(labelNames: string[]): M;

  protected metric(labels: Labels): M {
    this.inner ??= this.make(Object.keys(labels));
    return this.inner;
  }

  get(): Promise<client.MetricObjectWithValues<client.MetricValue<string>>> {
    if (this.inner) return this.inner.get();
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values: [], aggregator: 'sum', collect: () => undefined });
  }
}

export class Counter extends LazyMetric<client.Counter> {
  constructor(name: string, help: string) {
    super(name, help, 'counter' as unknown as client.MetricType);
  }
  protected make(labelNames: string[]): client.Counter {
    return new client.Counter({ name: this.name, help: this.help, labelNames, registers: [] });
  }
  inc(labels: Labels = {}, by = 1): void {
    this.metric(labels).inc(labels, by);
  }
}

export class Histogram extends LazyMetric<client.Histogram> {
  constructor(
    name: string,
    help: string,
    private readonly buckets: readonly number[],
  ) {
    super(name, help, 'histogram' as unknown as client.MetricType);
  }
  protected make(labelNames: string[]): client.Histogram {
    return new client.Histogram({ name: this.name, help: this.help, labelNames, buckets: [...this.buckets], registers: [] });
  }
  observe(labels: Labels, value: number): void {
    this.metric(labels).observe(labels, value);
  }
}

/** A gauge whose samples are read when scraped, so it never goes stale between scrapes. */
export class CollectedGauge implements Exposed {
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly collect: () => Promise<Array<[Labels, number]>>,
  ) {}

  async get(): Promise<client.MetricObjectWithValues<client.MetricValue<string>>> {
    const values = (await this.collect()).map(([labels, value]) => ({ labels, value }));
    return { name: this.name, help: this.help, type: 'gauge' as unknown as client.MetricType, values, aggregator: 'sum', collect: () => undefined };
  }
}

export class MetricsRegistry {
  private readonly registry = new client.Registry();

  /** `processMetrics: false` leaves out prom-client's process metrics (for registries that are not a service's). */
  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics !== false) client.collectDefaultMetrics({ register: this.registry });
  }

  register<M extends Exposed>(metric: M): M {
    this.registry.registerMetric(metric as unknown as client.Metric);
    return metric;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}

export const PROMETHEUS_CONTENT_TYPE = client.Registry.PROMETHEUS_CONTENT_TYPE;
