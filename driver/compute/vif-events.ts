/**
 * Nova's external instance events as a compute node waits for them (nova's
 * `wait_for_instance_event`): a build registers the `network-vif-plugged-<port>` events it
 * expects before it plugs, and external_instance_event delivers them. An event nobody waits for is
 * dropped, as nova drops it ("no waiting events found").
 */
export interface InstanceEvent {
  /** `network-vif-plugged`, `network-vif-unplugged`, `network-vif-deleted`, `network-changed`. */
  name: string;
  /** The port id. */
  tag: string | null;
  /** `completed` or `failed`. */
  status: string;
}

interface Waiter {
  names: Set<string>;
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
  expect(uuid: string, names: string[]): { wait(timeoutSeconds: number): Promise<{ missing: string[]; failed: string[] }>; cancel(): void } {
    const w: Waiter = { names: new Set(names), failed: [], done: () => undefined };
    const all = new Promise<void>((resolve) => {
      w.done = resolve;
    });
    if (w.names.size === 0) w.done();
    this.waiting.set(uuid, w);
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
          if (this.waiting.get(uuid) === w) this.waiting.delete(uuid);
        }
        return { missing: [...w.names], failed: [...w.failed] };
      },
      cancel: () => {
        if (this.waiting.get(uuid) === w) this.waiting.delete(uuid);
        w.done();
      },
    };
  }

  /** Hands an event to the build waiting for it; false when nothing waited for it. */
  deliver(uuid: string, ev: InstanceEvent): boolean {
    const w = this.waiting.get(uuid);
    const key = ev.tag ? `${ev.name}-${ev.tag}` : ev.name;
    if (!w || !w.names.delete(key)) return false;
    if (ev.status === 'failed') w.failed.push(key);
    if (w.names.size === 0) w.done();
    return true;
  }
}
