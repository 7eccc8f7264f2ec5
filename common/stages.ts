import diagnosticsChannel from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import type { Logger } from './log.js';

/**
 * Per-stage timings of long operations (a shelve's stop, commit and upload; an unshelve's image
 * fetch and boot). Each stage is logged at debug level with its duration, and published on the
 * diagnostics channel STAGE_CHANNEL, which costs nothing without a subscriber: a benchmark running
 * the node in its own process subscribes there for its per-stage breakdown.
 */
export const STAGE_CHANNEL = 'berth.stage';

export interface StageTiming {
  /** The operation the stage belongs to: `shelve`, `snapshot`, `unshelve`, `image`, ... */
  op: string;
  stage: string;
  /** What the operation works on: an instance or image id. */
  id: string;
  ms: number;
  ok: boolean;
}

const channel = diagnosticsChannel.channel(STAGE_CHANNEL);

/** Reports one finished stage: a debug line and, when someone listens, a StageTiming on STAGE_CHANNEL. */
export function reportStage(timing: StageTiming, log?: Logger): void {
  // A logger without debug (a partial one some callers pass) just does not log it.
  if (typeof log?.debug === 'function')
    log.debug({ op: timing.op, stage: timing.stage, id: timing.id, ms: Math.round(timing.ms * 10) / 10, ok: timing.ok }, 'stage finished');
  if (channel.hasSubscribers) channel.publish(timing);
}

/** Runs `fn` as stage `stage` of `op` on `id` and reports its duration, whether it succeeds or fails. */
export async function timeStage<T>(op: string, stage: string, id: string, fn: () => Promise<T>, log?: Logger): Promise<T> {
  const t0 = performance.now();
  let ok = false;
  try {
    const out = await fn();
    ok = true;
    return out;
  } finally {
    reportStage({ op, stage, id, ms: performance.now() - t0, ok }, log);
  }
}

/** Collects the StageTimings published while it is subscribed (in this process). */
export class StageRecorder {
  readonly timings: StageTiming[] = [];
  private readonly onMessage = (m: unknown): void => {
    this.timings.push(m as StageTiming);
  };

  constructor() {
    diagnosticsChannel.subscribe(STAGE_CHANNEL, this.onMessage);
  }

  /** The timings of `id` recorded so far, removed from the recorder. */
  take(id: string): StageTiming[] {
    const mine = this.timings.filter((t) => t.id === id);
    const rest = this.timings.filter((t) => t.id !== id);
    this.timings.length = 0;
    this.timings.push(...rest);
    return mine;
  }

  close(): void {
    diagnosticsChannel.unsubscribe(STAGE_CHANNEL, this.onMessage);
  }
}
