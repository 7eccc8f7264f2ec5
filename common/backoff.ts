/**
 * The wait before retry number `attempt` (0 for the first): `baseMs` doubling per attempt up to
 * `maxMs`, with jitter over its upper half so that clients failing together do not retry together.
 */
export function jitteredBackoff(baseMs: number, attempt: number, maxMs: number): number {
  const full = Math.min(maxMs, baseMs * 2 ** attempt);
  return full / 2 + Math.random() * (full / 2);
}
