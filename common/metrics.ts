/**
 * A small Prometheus registry: counters, histograms and gauges collected at scrape time, written
 * in the text exposition format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
 */
type Labels = Record<string, string>;

const escapeValue = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

function formatLabels(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeValue(v)}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

const keyOf = (labels: Labels): string => JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));

const formatNumber = (n: number): string => (Number.isFinite(n) ? String(n) : n > 0 ? '+Inf' : '-Inf');

interface Metric {
  render(): Promise<string[]> | string[];
}

export class Counter implements Metric {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    private readonly help: string,
  ) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = keyOf(labels);
    const entry = this.values.get(key) ?? { labels, value: 0 };
    entry.value += by;
    this.values.set(key, entry);
  }

  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const { labels, value } of this.values.values()) lines.push(`${this.name}${formatLabels(labels)} ${formatNumber(value)}`);
    return lines;
  }
}

export class Histogram implements Metric {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly buckets: readonly number[],
  ) {}

  observe(labels: Labels, value: number): void {
    const key = keyOf(labels);
    const s = this.series.get(key) ?? { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
    this.buckets.forEach((le, i) => {
      if (value <= le) s.counts[i]! += 1;
    });
    s.sum += value;
    s.count += 1;
    this.series.set(key, s);
  }

  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const s of this.series.values()) {
      this.buckets.forEach((le, i) => lines.push(`${this.name}_bucket${formatLabels({ ...s.labels, le: String(le) })} ${s.counts[i]}`));
      lines.push(`${this.name}_bucket${formatLabels({ ...s.labels, le: '+Inf' })} ${s.count}`);
      lines.push(`${this.name}_sum${formatLabels(s.labels)} ${s.sum}`, `${this.name}_count${formatLabels(s.labels)} ${s.count}`);
    }
    return lines;
  }
}

/** A gauge whose samples are read when scraped, so it never goes stale between scrapes. */
export class CollectedGauge implements Metric {
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly collect: () => Promise<Array<[Labels, number]>>,
  ) {}

  async render(): Promise<string[]> {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    for (const [labels, value] of await this.collect()) lines.push(`${this.name}${formatLabels(labels)} ${formatNumber(value)}`);
    return lines;
  }
}

export class MetricsRegistry {
  private readonly metrics: Metric[] = [];

  register<M extends Metric>(metric: M): M {
    this.metrics.push(metric);
    return metric;
  }

  async render(): Promise<string> {
    const blocks = await Promise.all(this.metrics.map((m) => m.render()));
    return `${blocks.flat().join('\n')}\n`;
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
