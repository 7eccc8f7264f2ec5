import { createInterface } from 'node:readline';
import { describeError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { refusal, type DockerApi } from './docker-api.js';

/** One line of the engine's event stream, as far as the agent reads it. */
export interface DockerEvent {
  Action?: string;
  /** Nanoseconds since the epoch; beyond 2^53, so good to a fraction of a millisecond. */
  timeNano?: number;
  Actor?: { Attributes?: Record<string, string> };
}

export interface EventFollow {
  /** Docker's event filters (`type`, `event`, `label`...). */
  filters: Record<string, string[]>;
  /** What is followed, for errors and logs. */
  what: string;
  /** After each (re)connection, before its first event: catches up with what nobody saw. */
  onConnect?: () => Promise<void>;
  onEvent: (ev: DockerEvent) => void;
  log: Logger;
}

export interface EventFollower {
  stop(): void;
}

/**
 * Follows the engine's event stream for `filters` until stopped, and again with back-off (0.25 s
 * doubling to 5 s, back to 0.25 s after a stream that lasted) whenever it breaks off: dockerd
 * restarting, a proxy closing it. Lines that are not JSON are skipped.
 */
export function followEvents(api: DockerApi, f: EventFollow): EventFollower {
  let stopped = false;
  let current: { destroy(): void } | undefined;
  const followOnce = async (): Promise<void> => {
    const res = await api.raw({ path: '/events', query: { filters: JSON.stringify(f.filters) }, timeoutMs: 0, what: f.what });
    if (res.status >= 300) {
      res.body.resume();
      throw refusal(f.what, res.status, '');
    }
    current = res.body;
    if (stopped) res.body.destroy();
    await f.onConnect?.();
    for await (const line of createInterface({ input: res.body, crlfDelay: Infinity })) {
      let ev: DockerEvent;
      try {
        ev = JSON.parse(line) as DockerEvent;
      } catch {
        continue;
      }
      f.onEvent(ev);
    }
  };
  void (async () => {
    let delay = 250;
    while (!stopped) {
      const began = Date.now();
      try {
        await followOnce();
      } catch (err) {
        if (!stopped) f.log.debug({ err: describeError(err), what: f.what }, 'engine event stream broke off; following again');
      }
      if (Date.now() - began > 30_000) delay = 250;
      if (!stopped) await new Promise((r) => setTimeout(r, delay).unref());
      delay = Math.min(delay * 2, 5000);
    }
  })();
  return {
    stop: () => {
      stopped = true;
      current?.destroy();
    },
  };
}
