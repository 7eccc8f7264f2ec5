import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../../lib/paths.js';
import { watchChild, type WatchedChild } from './child.js';

/**
 * berth-agent as its own process, compiled JavaScript as in production (a private `tsc` build
 * under node_modules/.cache/, else the sources through tsx), configured only through
 * BERTH__SECTION__KEY variables, so that the memory measured is the agent's alone.
 */
export interface AgentProcess extends WatchedChild {
  pid: number; url: string; token: string; host: string; runtime: string;
}

const ROOT = projectRoot();
const COMPILED = join(ROOT, 'node_modules/.cache/berth-bench-agent-dist');
const run = promisify(execFile);

async function agentCommand(): Promise<{ args: string[]; runtime: string }> {
  const started = Date.now();
  // Type errors elsewhere in the tree do not stop tsc from emitting, hence the freshness check.
  await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', COMPILED], { cwd: ROOT, timeout: 300_000 }).catch(() => undefined);
  const compiled = join(COMPILED, 'agent/main.js');
  if (existsSync(compiled) && statSync(compiled).mtimeMs >= started - 1000) return { args: [compiled], runtime: 'node <fresh tsc build>/agent/main.js' };
  return { args: ['--import', 'tsx', join(ROOT, 'agent/main.ts')], runtime: 'node --import tsx agent/main.ts' };
}

export async function startAgentProcess(opts: { host: string; imagesUrl: string; port: number; env?: Record<string, string> }): Promise<AgentProcess> {
  const stateDir = mkdtempSync(join(tmpdir(), 'berth-bench-agent-'));
  const emptyConf = join(stateDir, 'empty.conf');
  writeFileSync(emptyConf, '');
  const logFile = join(stateDir, 'agent.log');
  const out = openSync(logFile, 'a');
  const { args, runtime } = await agentCommand();
  const token = `bench-${opts.host}-token`;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin', BERTH_CONFIG: emptyConf,
    BERTH__DEFAULT__HOST: opts.host, BERTH__DEFAULT__STATE_PATH: stateDir,
    BERTH__AGENT__LISTEN: `127.0.0.1:${opts.port}`, BERTH__AGENT__TOKEN: token, BERTH__GLANCE__API_URL: opts.imagesUrl,
    ...opts.env,
  };
  const child: ChildProcess = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', out, out] });
  if (child.pid === undefined) throw new Error('could not start the agent process');
  return { pid: child.pid, url: `http://127.0.0.1:${opts.port}`, token, host: opts.host, runtime, ...watchChild(child, logFile, stateDir) };
}
