import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SERVICE_ENV, serviceCommand, type ServiceName } from './paths.js';
import { makePrivateDirSync } from '../../common/fs.js';

/**
 * Starts Berth's services as detached background processes with pid files and log files under
 * `state_path`, and stops them again. (Production runs them under systemd instead.)
 */
export const SERVICES: ServiceName[] = ['images', 'agent', 'compute'];
export const PROCESS_NAMES: Record<ServiceName, string> = { images: 'berth-images', agent: 'berth-agent', compute: 'berth-compute' };

export interface ServicePaths {
  pidFile: string;
  logFile: string;
}

export function servicePaths(statePath: string, name: ServiceName): ServicePaths {
  return { pidFile: join(statePath, 'run', `${PROCESS_NAMES[name]}.pid`), logFile: join(statePath, 'log', `${PROCESS_NAMES[name]}.log`) };
}

export function runningPid(statePath: string, name: ServiceName): number | null {
  try {
    const pid = Number(readFileSync(servicePaths(statePath, name).pidFile, 'utf8').trim());
    if (!Number.isInteger(pid) || pid <= 0) return null;
    process.kill(pid, 0);
    return pid;
  } catch {
    return null;
  }
}

export function startService(statePath: string, name: ServiceName, env: NodeJS.ProcessEnv): number {
  const existing = runningPid(statePath, name);
  if (existing) return existing;
  const paths = servicePaths(statePath, name);
  makePrivateDirSync(statePath, { tighten: true });
  makePrivateDirSync(join(statePath, 'run'));
  makePrivateDirSync(join(statePath, 'log'));
  const out = openSync(paths.logFile, 'a', 0o600);
  const { command, args } = serviceCommand(name);
  const child = spawn(command, args, { detached: true, stdio: ['ignore', out, out], env: { ...SERVICE_ENV, ...process.env, ...env } });
  closeSync(out);
  child.unref();
  writeFileSync(paths.pidFile, `${child.pid}\n`);
  return child.pid!;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopService(statePath: string, name: ServiceName, graceMs = 35_000): Promise<boolean> {
  const pid = runningPid(statePath, name);
  const { pidFile } = servicePaths(statePath, name);
  if (!pid) {
    rmSync(pidFile, { force: true });
    return false;
  }
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    try {
      process.kill(pid, 0);
    } catch {
      rmSync(pidFile, { force: true });
      return true;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
  rmSync(pidFile, { force: true });
  return true;
}
