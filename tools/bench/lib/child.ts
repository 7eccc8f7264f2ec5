import type { ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';

/** Resident memory of a process in kB, from /proc. */
export function readRssKb(pid: number): number {
  return Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
}

export interface WatchedChild {
  rssKb(): number;
  /** Peak resident memory (VmHWM) in kB. */
  peakRssKb(): number;
  logTail(lines?: number): string;
  /** Log lines containing `text`. */
  logCount(text: string): number;
  /** SIGTERM, SIGKILL after 15 s; then removes its state directory. */
  stop(): Promise<void>;
}

/** What every benchmarked service process offers: memory, its log, and a clean stop. */
export function watchChild(child: ChildProcess, logFile: string, stateDir: string): WatchedChild {
  const pid = child.pid!;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const log = (): string[] => {
    try {
      return readFileSync(logFile, 'utf8').trimEnd().split('\n');
    } catch {
      return [];
    }
  };
  return {
    rssKb: () => readRssKb(pid),
    peakRssKb: () => Number(/^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN),
    logTail: (lines = 20) => log().slice(-lines).join('\n'),
    logCount: (text) => log().filter((l) => l.includes(text)).length,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
