import type { StageTiming } from '../../../common/stages.js';
import { summarize } from './report.js';

/**
 * The per-stage breakdown of a benchmark's rounds: for each `op.stage` seen (in the order first
 * seen), the median and extremes of its duration over the rounds (a stage run twice in one round
 * counts as the sum). Rows are ready for printTable.
 */
export function stageRows(rounds: readonly StageTiming[][]): Record<string, unknown>[] {
  const names: string[] = [];
  const perRound = rounds.map((timings) => {
    const sums = new Map<string, number>();
    for (const t of timings) {
      const name = `${t.op}.${t.stage}${t.ok ? '' : ' (failed)'}`;
      if (!names.includes(name)) names.push(name);
      sums.set(name, (sums.get(name) ?? 0) + t.ms);
    }
    return sums;
  });
  return names.map((name) => {
    const values = perRound.map((m) => m.get(name)).filter((v): v is number => v !== undefined);
    const s = summarize(values);
    return { stage: name, n: s.n, 'median ms': s.median, 'min ms': s.min, 'max ms': s.max };
  });
}
