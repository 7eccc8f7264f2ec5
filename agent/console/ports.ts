import { agentError } from '../errors.js';

export interface PortRange {
  start: number;
  /** Excluded, as in nova's port_range. */
  stop: number;
}

/** `START:STOP` ([serial_console] port_range), START < STOP, both TCP ports. */
export function parsePortRange(value: string): PortRange {
  const m = /^(\d+):(\d+)$/.exec(value.trim());
  const start = m ? Number(m[1]) : NaN;
  const stop = m ? Number(m[2]) : NaN;
  if (!m || start < 1 || stop > 65536 || start >= stop) {
    throw agentError('INVALID_INPUT', `[serial_console] port_range ${JSON.stringify(value)} is not START:STOP with 1 <= START < STOP <= 65536`);
  }
  return { start, stop };
}

/**
 * The ports of the range this agent holds, and the search for the next free one (nova's
 * acquire_port): ports held here are skipped, then each is tried with `tryListen`, which
 * answers false when another program has it. Exhausted: CONSOLE_PORTS_EXHAUSTED.
 */
export class PortPool {
  private readonly held = new Set<number>();
  constructor(private readonly range: PortRange) {}

  async take<T>(tryListen: (port: number) => Promise<T | null>): Promise<{ port: number; value: T }> {
    for (let port = this.range.start; port < this.range.stop; port++) {
      if (this.held.has(port)) continue;
      // Held before the attempt: a concurrent take never tries the same port.
      this.held.add(port);
      const value = await tryListen(port).catch(() => null);
      if (value !== null) return { port, value };
      this.held.delete(port);
    }
    throw agentError('CONSOLE_PORTS_EXHAUSTED', `no free console port in ${this.range.start}:${this.range.stop}`, { ...this.range });
  }

  release(port: number): void {
    this.held.delete(port);
  }
}
