import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, openSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot, SERVICE_ENV } from '../../lib/paths.js';
import { watchChild, type WatchedChild } from './child.js';
import { compiledCommand, type NodeCommand } from './compiled.js';

/**
 * berth-compute as its own process, configured only through BERTH__SECTION__KEY variables (an
 * empty config file keeps a host's /etc/berth/berth.conf out), so that its memory and its event
 * loop are its own.
 */
export interface DriverProcess extends WatchedChild {
  pid: number;
  host: string;
  exchange: string;
  stateDir: string;
  /** How it was started: the built dist/ or the TypeScript sources through tsx. */
  runtime: string;
}

export interface DriverProcessOptions {
  agentUrl: string;
  agentToken: string;
  amqpUrl: string;
  env?: Record<string, string>;
}

const ROOT = projectRoot();
const SOURCE_DIRS = ['driver', 'common', 'conf', 'agent/client', 'glance-bridge/client'];

function newestSourceMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceMtime(p));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * The driver as it runs in production, compiled JavaScript, so that the TypeScript loader's own
 * memory and start-up are not measured: dist/ when it is at least as new as every source it is
 * built from, else a private build (node_modules/ keeps it out of the tree and lets it resolve
 * the dependencies), else the sources through tsx.
 */
async function driverCommand(): Promise<NodeCommand> {
  const built = join(ROOT, 'dist/driver/main.js');
  try {
    const builtAt = statSync(built).mtimeMs;
    if (SOURCE_DIRS.every((d) => newestSourceMtime(join(ROOT, d)) <= builtAt)) return { args: [built], runtime: 'node dist/driver/main.js' };
  } catch {
    /* not built */
  }
  return compiledCommand('driver/main', 'berth-bench-dist');
}

export async function startDriverProcess(opts: DriverProcessOptions): Promise<DriverProcess> {
  const id = randomUUID().slice(0, 8);
  const host = `bench-${id}`;
  const exchange = `berth-bench-${id}`;
  const stateDir = mkdtempSync(join(tmpdir(), 'berth-bench-driver-'));
  const emptyConf = join(stateDir, 'empty.conf');
  writeFileSync(emptyConf, '');
  const logFile = join(stateDir, 'driver.log');
  const out = openSync(logFile, 'a');
  const { args, runtime } = await driverCommand();
  const env: Record<string, string> = {
    ...SERVICE_ENV,
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    BERTH_CONFIG: emptyConf,
    BERTH__DEFAULT__HOST: host,
    BERTH__DEFAULT__CONTROL_EXCHANGE: exchange,
    BERTH__DEFAULT__STATE_PATH: stateDir,
    BERTH__DEFAULT__TRANSPORT_URL: opts.amqpUrl.replace(/^amqp:/, 'rabbit:'),
    BERTH__DATABASE__CONNECTION: `sqlite:///${join(stateDir, 'driver.sqlite')}`,
    BERTH__AGENT__URL: opts.agentUrl,
    BERTH__AGENT__TOKEN: opts.agentToken,
    ...opts.env,
  };
  const child: ChildProcess = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', out, out] });
  if (child.pid === undefined) throw new Error('could not start the driver process');
  return { pid: child.pid, host, exchange, stateDir, runtime, ...watchChild(child, logFile, stateDir) };
}
