/**
 * Nova's external instance events as a compute node waits for them (nova's
 * `wait_for_instance_event`): an operation registers the `network-vif-plugged-<port>` events it
 * expects before the binding update or the plug that makes Neutron send them, and
 * external_instance_event delivers them. An event nobody waits for is dropped, as nova drops it
 * ("no waiting events found").
 */
export interface InstanceEvent {
  /** `network-vif-plugged`, `network-vif-unplugged`, `network-vif-deleted`, `network-changed`. */
  name: string;
  /** The port id. */
  tag: string | null;
  /** `completed` or `failed`. */
  status: string;
}

/** The wait for the events of one instance; see InstanceEvents.expect. */
export interface EventWait {
  wait(timeoutSeconds: number): Promise<{ missing: string[]; failed: string[] }>;
  cancel(): void;
}

/** Events of one instance taken before their names are known; see InstanceEvents.listen. */
export interface EventListener {
  /** The names now known: those that came already count, the others are waited for. */
  expect(names: string[]): EventWait;
  /** Stops listening (the operation failed before it knew what to wait for). */
  cancel(): void;
}

interface Waiter {
  /** null while listening: the names are not known yet, every event of the instance is kept. */
  names: Set<string> | null;
  /** What came while listening: name → status. */
  early: Map<string, string>;
  failed: string[];
  done: () => void;
}

export class InstanceEvents {
  private readonly waiting = new Map<string, Waiter>();

  /**
   * Starts waiting for events of one instance (named `<name>-<tag>`). The returned `wait` resolves
   * with the names that did not come (empty: all came) and those that came `failed`, after at most
   * `timeoutSeconds`; `cancel` stops waiting.
   */
  expect(uuid: string, names: string[]): EventWait {
    return this.listen(uuid).expect(names);
  }

  /**
   * Starts taking the events of one instance before the operation knows their names: the ports
   * of a build are made, and those of a move bound to this host, after the wait is registered,
   * and Neutron may send `network-vif-plugged` as soon as the binding changes or the tap
   * appears. `expect` then names the events waited for; those that came meanwhile count.
   */
  listen(uuid: string): EventListener {
    const w: Waiter = { names: null, early: new Map(), failed: [], done: () => undefined };
    const all = new Promise<void>((resolve) => {
      w.done = resolve;
    });
    this.waiting.set(uuid, w);
    const stop = (): void => {
      if (this.waiting.get(uuid) === w) this.waiting.delete(uuid);
    };
    return {
      cancel: () => {
        stop();
        w.done();
      },
      expect: (names) => {
        w.names = new Set(names);
        for (const [key, status] of w.early) {
          if (!w.names.delete(key)) continue;
          if (status === 'failed') w.failed.push(key);
        }
        w.early.clear();
        if (w.names.size === 0) w.done();
        return {
          wait: async (timeoutSeconds) => {
            let timer: NodeJS.Timeout | undefined;
            const timeout = new Promise<void>((r) => {
              timer = setTimeout(r, timeoutSeconds * 1000);
              timer.unref();
            });
            try {
              await Promise.race([all, timeout]);
            } finally {
              clearTimeout(timer);
              stop();
            }
            return { missing: [...(w.names ?? [])], failed: [...w.failed] };
          },
          cancel: () => {
            stop();
            w.done();
          },
        };
      },
    };
  }

  /** Hands an event to the operation waiting for it; false when nothing waited for it. */
  deliver(uuid: string, ev: InstanceEvent): boolean {
    const w = this.waiting.get(uuid);
    const key = ev.tag ? `${ev.name}-${ev.tag}` : ev.name;
    if (!w) return false;
    if (!w.names) {
      w.early.set(key, ev.status);
      return true;
    }
    if (!w.names.delete(key)) return false;
    if (ev.status === 'failed') w.failed.push(key);
    if (w.names.size === 0) w.done();
    return true;
  }
}
