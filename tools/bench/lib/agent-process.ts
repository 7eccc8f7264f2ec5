import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot, SERVICE_ENV } from '../../lib/paths.js';
import { watchChild, type WatchedChild } from './child.js';
import { compiledCommand } from './compiled.js';

/**
 * berth-agent as its own process, compiled JavaScript as in production (a private `tsc` build
 * under node_modules/.cache/, else the sources through tsx), configured only through
 * BERTH__SECTION__KEY variables, so that the memory measured is the agent's alone.
 */
export interface AgentProcess extends WatchedChild {
  pid: number;
  url: string;
  token: string;
  host: string;
  runtime: string;
}

const ROOT = projectRoot();

export async function startAgentProcess(opts: { host: string; imagesUrl: string; port: number; env?: Record<string, string> }): Promise<AgentProcess> {
  const stateDir = mkdtempSync(join(tmpdir(), 'berth-bench-agent-'));
  const emptyConf = join(stateDir, 'empty.conf');
  writeFileSync(emptyConf, '');
  const logFile = join(stateDir, 'agent.log');
  const out = openSync(logFile, 'a');
  const { args, runtime } = await compiledCommand('agent/main', 'berth-bench-agent-dist');
  const token = `bench-${opts.host}-token`;
  const env: Record<string, string> = {
    ...SERVICE_ENV,
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    BERTH_CONFIG: emptyConf,
    BERTH__DEFAULT__HOST: opts.host,
    BERTH__DEFAULT__STATE_PATH: stateDir,
    BERTH__AGENT__LISTEN: `127.0.0.1:${opts.port}`,
    BERTH__AGENT__TOKEN: token,
    BERTH__GLANCE__API_URL: opts.imagesUrl,
    ...opts.env,
  };
  const child: ChildProcess = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', out, out] });
  if (child.pid === undefined) throw new Error('could not start the agent process');
  return { pid: child.pid, url: `http://127.0.0.1:${opts.port}`, token, host: opts.host, runtime, ...watchChild(child, logFile, stateDir) };
}
