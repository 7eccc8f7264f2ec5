/**
 * Shares work per key: while a task for a key runs, later callers for that key get its promise
 * instead of starting another. The key is free again once the task settles, success or failure.
 */
export class SingleFlight<V, K = string> {
  private readonly flights = new Map<K, Promise<V>>();

  /** The running task's promise for `key`, or a new one started with `task`. */
  run(key: K, task: () => Promise<V>): Promise<V> {
    const running = this.flights.get(key);
    if (running) return running;
    const started = (async () => task())().finally(() => {
      if (this.flights.get(key) === started) this.flights.delete(key);
    });
    this.flights.set(key, started);
    return started;
  }

  /** The task running for `key`, if any. */
  get(key: K): Promise<V> | undefined {
    return this.flights.get(key);
  }

  keys(): IterableIterator<K> {
    return this.flights.keys();
  }

  get size(): number {
    return this.flights.size;
  }
}
