/**
 * Start-up cost of the berth CLI for commands that need no Keystone and no broker (`--version`,
 * `conf check`, `conf sample`), compiled as installed, against `node -e 0` measured in the same
 * run, interleaved so both see the same machine load. Prints the medians, the ratio and the time
 * Berth adds to a bare node start; the target is to start "well under 0.5 s": the added time at
 * most 250 ms. Usage: npm run bench:cli-start [-- RUNS] (default 15 runs of each).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { compiledCommand } from './lib/compiled.js';
import { elapsedMs, printAborted, printResult, printTable, summarize } from './lib/report.js';

const run = promisify(execFile);
const RUNS = Math.max(3, Math.min(100, Number(process.argv[2] ?? 15)));

async function timed(args: string[]): Promise<number> {
  const started = process.hrtime.bigint();
  await run(process.execPath, args, { env: { PATH: process.env.PATH, HOME: process.env.HOME, BERTH_CONFIG: '' } });
  return elapsedMs(started);
}

async function main(): Promise<void> {
  const cli = await compiledCommand('tools/cli/berth', 'bench-cli-start');
  const scratch = mkdtempSync(join(tmpdir(), 'berth-bench-cli-'));
  const conf = join(scratch, 'berth.conf');
  writeFileSync(conf, '[DEFAULT]\nhost = bench\n');
  const commands: Record<string, string[]> = {
    'node -e 0 (baseline)': ['-e', '0'],
    'berth --version': [...cli.args, '--version'],
    'berth conf check FILE': [...cli.args, 'conf', 'check', conf],
    'berth conf sample': [...cli.args, 'conf', 'sample'],
  };
  const times = new Map<string, number[]>(Object.keys(commands).map((k) => [k, []]));
  try {
    for (const args of Object.values(commands)) await timed(args); // warm the file cache
    for (let i = 0; i < RUNS; i++) for (const [name, args] of Object.entries(commands)) times.get(name)!.push(await timed(args));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const base = summarize(times.get('node -e 0 (baseline)')!).median;
  const rows = [...times].map(([command, t]) => {
    const s = summarize(t);
    return { command, runs: s.n, 'median ms': s.median, 'p90 ms': s.p90, 'ratio vs node -e 0': s.median / base, 'added ms': s.median - base };
  });
  printTable(`CLI start-up (${cli.runtime})`, rows);
  const worst = rows.slice(1).reduce((a, b) => (b['added ms'] > a['added ms'] ? b : a));
  printResult('cli-start', [
    { metric: 'added_ms', value: worst['added ms'], target: 250 },
    { metric: 'ratio', value: worst['ratio vs node -e 0'], target: 10 },
  ]);
}

main().catch((err) => {
  printAborted('cli-start', err);
  process.exitCode = 1;
});
