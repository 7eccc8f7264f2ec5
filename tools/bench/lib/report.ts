/**
 * Figures and verdicts for the benchmarks: percentiles, a plain table, and the closing
 * `RESULT <name> <metric>=<value> target<=<limit> PASS|FAIL` line that scripts grep for.
 */
export interface Summary {
  n: number;
  min: number;
  median: number;
  p90: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentile of `values` (p in 0..100). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export function summarize(values: readonly number[]): Summary {
  return {
    n: values.length,
    min: Math.min(...values),
    median: percentile(values, 50),
    p90: percentile(values, 90),
    p99: percentile(values, 99),
    max: Math.max(...values),
  };
}

const fmt = (v: unknown): string => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : String(v));

/** Prints rows as an aligned table; the first row's keys are the columns. */
export function printTable(title: string, rows: readonly Record<string, unknown>[]): void {
  if (rows.length === 0) return;
  const cols = Object.keys(rows[0]!);
  const cells = rows.map((r) => cols.map((c) => fmt(r[c])));
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => (i === 0 ? v.padEnd(widths[i]!) : v.padStart(widths[i]!))).join('  ');
  process.stdout.write(`\n${title}\n${line(cols)}\n${line(widths.map((w) => '-'.repeat(w)))}\n`);
  for (const row of cells) process.stdout.write(`${line(row)}\n`);
}

export interface Verdict {
  metric: string;
  value: number;
  target: number;
}

/** The closing line; PASS only when every metric is finite and within its target. */
export function printResult(name: string, verdicts: readonly Verdict[]): boolean {
  const pass = verdicts.every((v) => Number.isFinite(v.value) && v.value <= v.target);
  const parts = verdicts.map((v) => `${v.metric}=${fmt(v.value)} target<=${fmt(v.target)}`);
  process.stdout.write(`\nRESULT ${name} ${parts.join(' ')} ${pass ? 'PASS' : 'FAIL'}\n`);
  return pass;
}

/** A failed run still ends with a RESULT line, so a reader never mistakes silence for a pass. */
export function printAborted(name: string, err: unknown): void {
  process.stdout.write(`\nRESULT ${name} aborted: ${err instanceof Error ? err.message : String(err)} FAIL\n`);
}

export const elapsedMs = (startNs: bigint): number => Number(process.hrtime.bigint() - startNs) / 1e6;
