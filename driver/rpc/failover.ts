import type { BrokerHost } from '../../common/transport-url.js';

/**
 * Which broker host to try next and how long to wait first, as oslo.messaging's rabbit driver
 * (over kombu) does it:
 *
 * - with several hosts, oslo shuffles the list once, when the connection object is made, so that
 *   the clients of a cluster spread over its nodes; the first connection tries the first host;
 * - after a failed attempt the next host is tried at once; only when a whole cycle of hosts has
 *   failed is there a pause: `rabbit_retry_interval`, growing by `rabbit_retry_backoff` per cycle
 *   up to `rabbit_interval_max` + `rabbit_retry_interval` (kombu's `fxrange`), then staying there;
 * - `round-robin` takes the hosts in (shuffled) order; `shuffle` draws one at random each time
 *   (possibly the same again);
 * - when an established connection is lost, the host that was lost is tried again first, after
 *   `kombu_reconnect_delay`; while recovering, each failed attempt adds `kombu_reconnect_delay`
 *   (oslo's error callback sleeps it before kombu moves on).
 */
export interface FailoverOptions {
  strategy: 'round-robin' | 'shuffle';
  retryIntervalSeconds: number;
  retryBackoffSeconds: number;
  intervalMaxSeconds: number;
  reconnectDelaySeconds: number;
  /** Injected for tests; Math.random by default. */
  random?: () => number;
}

export class FailoverPlan {
  private readonly hosts: BrokerHost[];
  private index = 0;
  /** Failed attempts since the last success (kombu's `retries`). */
  private failures = 0;
  /** The next pause after a full cycle, in seconds (kombu's interval range). */
  private interval: number;
  private recovering = false;
  private readonly random: () => number;

  constructor(
    hosts: readonly BrokerHost[],
    private readonly o: FailoverOptions,
  ) {
    if (hosts.length === 0) throw new Error('no broker host');
    this.random = o.random ?? Math.random;
    this.hosts = [...hosts];
    if (this.hosts.length > 1) shuffle(this.hosts, this.random);
    this.interval = this.start;
  }

  private get start(): number {
    return this.o.retryIntervalSeconds || 1;
  }

  /** The host the next attempt goes to. */
  get current(): BrokerHost {
    return this.hosts[this.index]!;
  }

  /** The hosts in the order they are tried (after the initial shuffle). */
  get order(): readonly BrokerHost[] {
    return this.hosts;
  }

  /** A connection was established to `current`: the retry state starts over. */
  connected(): void {
    this.failures = 0;
    this.interval = this.start;
    this.recovering = false;
  }

  /** The established connection to `current` was lost; returns the ms to wait before the next attempt (to the same host). */
  lost(): number {
    this.recovering = true;
    this.failures = 0;
    this.interval = this.start;
    return this.o.reconnectDelaySeconds * 1000;
  }

  /** An attempt on `current` failed; moves to the next host and returns the ms to wait before trying it. */
  failed(): number {
    const completesCycle = (this.failures + 1) % this.hosts.length === 0;
    this.failures++;
    let seconds = 0;
    if (completesCycle) {
      seconds = this.interval;
      const next = this.interval + this.o.retryBackoffSeconds;
      if (next <= this.o.intervalMaxSeconds + this.start) this.interval = next;
    }
    if (this.recovering) seconds += this.o.reconnectDelaySeconds;
    this.advance();
    return seconds * 1000;
  }

  private advance(): void {
    if (this.hosts.length < 2) return;
    if (this.o.strategy === 'shuffle') this.index = Math.floor(this.random() * this.hosts.length);
    else this.index = (this.index + 1) % this.hosts.length;
  }
}

/** Fisher-Yates, as Python's random.shuffle. */
function shuffle<T>(a: T[], random: () => number): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
}
