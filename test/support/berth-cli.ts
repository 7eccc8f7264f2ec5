import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Stack } from '../../tools/lib/stack.js';
import { ROOT } from './fixtures.js';

const exec = promisify(execFile);

/** What a run of the berth CLI printed, and its exit code (-1 when it was killed). */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `tools/berth ARGS` as a user would, with exactly `env`; never rejects. */
export async function runBerth(args: string[], env: NodeJS.ProcessEnv, opts: { timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await exec(join(ROOT, 'tools', 'berth'), args, {
      env,
      timeout: opts.timeoutMs ?? 90_000,
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** The JSON a successful run printed (`-f json`); fails the test with the run's stderr otherwise. */
export function jsonOf<T>(r: CliResult): T {
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
}

/** The environment of a CLI run against a node of tools/lib/stack.ts, with no config file and its own state folder. */
export function stackCliEnv(stack: Stack, statePath: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    BERTH_FROM_SOURCE: '1',
    BERTH_CONFIG: '',
    BERTH__DEFAULT__HOST: stack.host,
    BERTH__DEFAULT__CONTROL_EXCHANGE: stack.exchange,
    BERTH__DEFAULT__STATE_PATH: statePath,
    BERTH__GLANCE__API_URL: stack.imagesUrl,
    BERTH__AGENT__URL: stack.agentUrl,
    BERTH__AGENT__TOKEN: stack.agentToken,
    ...extra,
  };
}
