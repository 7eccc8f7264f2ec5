/**
 * Serializes work per key: operations on one key (an instance, a network, a project's quota
 * decisions) never overlap and run in the order they were asked for, each after the one before it
 * settled, whether it succeeded or failed; different keys run concurrently.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(task);
    this.tails.set(key, next);
    try {
      return await next;
    } finally {
      if (this.tails.get(key) === next) this.tails.delete(key);
    }
  }

  /** Keys with an operation running or waiting. */
  get size(): number {
    return this.tails.size;
  }
}
