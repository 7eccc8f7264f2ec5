import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './fixtures.js';

/**
 * berth-compute as its own process (`node --import tsx driver/main.ts`), configured only through
 * BERTH__SECTION__KEY variables and an empty config file, so a test can SIGKILL it.
 */
export interface DriverProcess {
  pid: number;
  /** Resolves once the process has exited (with its signal, if killed). */
  exited: Promise<NodeJS.Signals | number | null>;
  kill(signal: NodeJS.Signals): Promise<void>;
}

const READY = '"msg":"berth-compute consuming"';

export async function spawnDriverProcess(settings: Record<string, string>, stateDir: string, logFile: string, readyTimeoutMs = 30_000): Promise<DriverProcess> {
  const emptyConf = join(stateDir, 'empty.conf');
  writeFileSync(emptyConf, '');
  // No status server unless a test asks: test drivers would otherwise all contend for one port.
  const env: NodeJS.ProcessEnv = { BERTH_CONFIG: emptyConf, BERTH__DEFAULT__STATUS_LISTEN: '' };
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BERTH__') && k !== 'BERTH_CONFIG') env[k] = v;
  Object.assign(env, settings);
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'driver', 'main.ts')], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`driver process not consuming within ${readyTimeoutMs} ms; see ${logFile}`)), readyTimeoutMs);
    let buffered = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      appendFileSync(logFile, chunk);
      buffered = (buffered + chunk.toString('utf8')).slice(-4096);
      if (buffered.includes(READY)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => appendFileSync(logFile, chunk));
    void exited.then((how) => {
      clearTimeout(timer);
      reject(new Error(`driver process exited (${String(how)}) before consuming; see ${logFile}`));
    });
  });
  try {
    await ready;
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    pid: child.pid!,
    exited,
    async kill(signal) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 10_000).unref());
      if ((await Promise.race([exited, timeout])) === 'timeout') {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}
