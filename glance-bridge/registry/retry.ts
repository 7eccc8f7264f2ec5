import { finished, PassThrough, type Readable } from 'node:stream';
import { backoffDelay, UPPER_HALF_JITTER } from '../../common/backoff.js';
import { BerthError } from '../../common/errors.js';
import { imageError } from '../errors.js';

/**
 * Retries with back-off for registry requests, and a blob body that resumes with `Range` where a
 * broken connection left it: what docker pull does (moby retries a layer five times and resumes
 * its download from the bytes it has), so that a registry restart or a dropped connection in the
 * middle of a large layer costs one more request, not the layer.
 */
export interface RetryPolicy {
  /** Attempts after the first that a transient failure may use (0: none). */
  retries: number;
  /** Delay before the first retry; it doubles for each further one (with jitter), up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /** How to wait (tests replace it). */
  sleep?: (ms: number) => Promise<void>;
}

const sleepFor = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
// A resumed body that brought at least this much made progress: its fault does not use up a retry.
const PROGRESS = 1024 * 1024;

/** Failures worth another try: the registry unreachable or timing out, 429, and 5xx but 501. */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof BerthError)) return false;
  if (err.code === 'REGISTRY_UNREACHABLE') return true;
  const status = Number(err.details.status);
  return err.code === 'REGISTRY_ERROR' && (status === 429 || (status >= 500 && status !== 501));
}

/** The wait before retry number `attempt` (1-based): exponential with jitter, or what Retry-After asked. */
export function retryDelay(policy: RetryPolicy, attempt: number, err?: unknown): number {
  const asked = err instanceof BerthError ? Number(err.details.retry_after) : NaN;
  if (Number.isFinite(asked) && asked >= 0) return Math.min(asked * 1000, policy.maxDelayMs);
  return backoffDelay(attempt - 1, { baseMs: policy.baseDelayMs, maxMs: policy.maxDelayMs, jitter: UPPER_HALF_JITTER });
}

/** Runs `fn`, again after a back-off for each transient failure, at most `retries` more times. */
export async function withRetries<T>(policy: RetryPolicy, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt > policy.retries || !isTransient(err)) throw err;
      await (policy.sleep ?? sleepFor)(retryDelay(policy, attempt, err));
    }
  }
}

/** Opens the blob again from byte `offset`; resolves with a body that starts exactly there. */
export type Reopen = (offset: number) => Promise<Readable>;

/**
 * A blob body that, when the connection breaks (reset, timeout, premature end), asks for the rest
 * with `reopen(bytesSoFar)` after a back-off, and goes on as one stream. A failed reopen is a
 * fault too, retried here (reopen makes one request). A fault after at least 1 MiB of progress
 * starts the count again; more than `retries` faults in a row end the stream with
 * REGISTRY_UNREACHABLE (or the last request's own error), so `retries` = 0 survives none.
 */
export class ResumingBody extends PassThrough {
  private current: Readable | null = null;
  private offset = 0;
  private faults = 0;
  private sinceFault = 0;

  constructor(
    first: Readable,
    private readonly reopen: Reopen,
    private readonly policy: RetryPolicy,
    private readonly what: string,
  ) {
    super();
    this.attach(first);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.current?.destroy();
    this.current = null;
    cb(err);
  }

  private attach(body: Readable): void {
    this.current = body;
    // Piped, the way the bytes would flow without this stream; the listener only counts them.
    body.on('data', (chunk: Buffer) => {
      this.offset += chunk.length;
      this.sinceFault += chunk.length;
    });
    body.pipe(this, { end: false });
    body.once('end', () => {
      if (this.current === body) this.end();
    });
    finished(body, (err) => {
      if (err && this.current === body && !this.destroyed) void this.recover(body, err);
    });
  }

  private async recover(broken: Readable, cause: Error): Promise<void> {
    broken.unpipe(this);
    broken.removeAllListeners('data');
    broken.destroy();
    this.current = null;
    let last: unknown = cause;
    for (;;) {
      if (this.sinceFault >= PROGRESS) this.faults = 0;
      this.sinceFault = 0;
      this.faults++;
      if (this.faults > this.policy.retries) {
        this.destroy(
          last instanceof BerthError
            ? last
            : imageError(
                'REGISTRY_UNREACHABLE',
                `${this.what} broke off after ${this.offset} bytes and ${this.policy.retries} attempts to resume it: ${describe(last)}`,
                { offset: this.offset },
                last,
              ),
        );
        return;
      }
      await (this.policy.sleep ?? sleepFor)(retryDelay(this.policy, this.faults, last));
      if (this.destroyed) return;
      try {
        const body = await this.reopen(this.offset);
        if (this.destroyed) {
          body.destroy();
          return;
        }
        this.attach(body);
        return;
      } catch (err) {
        if (!isTransient(err)) {
          this.destroy(err as Error);
          return;
        }
        last = err;
      }
    }
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return (err as NodeJS.ErrnoException).code ?? err.message;
  return String(err);
}
