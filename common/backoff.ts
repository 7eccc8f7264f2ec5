export interface BackoffOptions {
  /** The wait before the first retry (attempt 0), before jitter. */
  baseMs: number;
  /** The most it grows to, before jitter. */
  maxMs: number;
  /**
   * The wait is spread uniformly over [lo, hi] times the doubled delay, so that clients failing
   * together do not retry together; [1, 1] (the default) is no jitter.
   */
  jitter?: readonly [lo: number, hi: number];
}

/** The wait before retry number `attempt` (0 for the first): `baseMs` doubling per attempt up to `maxMs`, then jittered. */
export function backoffDelay(attempt: number, o: BackoffOptions): number {
  const full = Math.min(o.maxMs, o.baseMs * 2 ** attempt);
  const [lo, hi] = o.jitter ?? [1, 1];
  return full * (lo + Math.random() * (hi - lo));
}

/** Jitter over the upper half of the doubled delay. */
export const UPPER_HALF_JITTER = [0.5, 1] as const;

/**
 * backoffDelay with jitter over its upper half, taking the three numbers. No product code calls it
 * any more (callers pass UPPER_HALF_JITTER to backoffDelay); the kit's unit test still does.
 */
export function jitteredBackoff(baseMs: number, attempt: number, maxMs: number): number {
  return backoffDelay(attempt, { baseMs, maxMs, jitter: UPPER_HALF_JITTER });
}
