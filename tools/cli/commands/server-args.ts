/** Command-line arguments of the server commands, and how a command's body is run (berth.ts: with a fresh CliContext). */
import type { CliContext } from '../context.js';
import { UsageError } from '../context.js';

export type Run = (fn: (ctx: CliContext) => Promise<void>) => Promise<void>;

export function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
    return n;
  };
}

export function commaList(name: string) {
  return (v: string): string[] => {
    const items = v
      .split(',')
      .map((h) => h.trim())
      .filter(Boolean);
    if (!items.length || items.some((h) => !/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/.test(h)))
      throw new UsageError(`${name} must be a comma-separated list of host names, got ${JSON.stringify(v)}`);
    return items;
  };
}

/** `--timeout` of a waiting command, with its default. */
export function timeoutOption(def: number): [string, string, (v: string) => number, number] {
  return ['--timeout <s>', `seconds to wait with --wait (default ${def})`, positiveInt('--timeout'), def];
}
