import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Runs the stock oslo.messaging client (test/support/oslo_client.py) with Debian's interpreter.
 * Another python3 may be first on PATH (pyenv) and would not see python3-oslo.messaging, so the
 * interpreter is fixed and the environment is stripped of Python overrides.
 */
export const STOCK_PYTHON = process.env.BERTH_STOCK_PYTHON ?? '/usr/bin/python3';
export const OSLO_CLIENT = join(dirname(fileURLToPath(import.meta.url)), 'oslo_client.py');

function pythonEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONUNBUFFERED: '1', PYTHONNOUSERSITE: '1', PYTHONDONTWRITEBYTECODE: '1' };
  for (const k of ['PYTHONPATH', 'PYTHONHOME', 'PYENV_VERSION', 'VIRTUAL_ENV']) delete env[k];
  return env;
}

export interface OsloProcess<T> {
  /** Resolves once the helper printed `{"ready": true}` (listen mode). */
  ready: Promise<void>;
  /** The last JSON line the helper printed. Rejects on a crash, a `fatal` result or the time limit. */
  result: Promise<T>;
  kill(): void;
}

/** Starts the helper with `job` on stdin; it is SIGKILLed after `limitMs`. */
export function startOsloClient<T = Record<string, unknown>>(job: Record<string, unknown>, limitMs = 30_000): OsloProcess<T> {
  const child = spawn(STOCK_PYTHON, [OSLO_CLIENT], { env: pythonEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  let onReady: () => void = () => undefined;
  let readyFailed: (e: Error) => void = () => undefined;
  const ready = new Promise<void>((res, rej) => {
    onReady = res;
    readyFailed = rej;
  });
  ready.catch(() => undefined);
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    if (/^\{"ready": true\}$/m.test(stdout)) onReady();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-8000);
  });
  const result = new Promise<T>((resolve, reject) => {
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const lines = stdout
        .trim()
        .split('\n')
        .filter((l) => l.startsWith('{'));
      const last = lines.at(-1);
      const fail = (why: string) => {
        const e = new Error(`oslo_client.py ${why} (exit ${code}, signal ${signal})\nstdout: ${stdout.slice(-2000)}\nstderr: ${stderr}`);
        readyFailed(e);
        reject(e);
      };
      if (signal) return fail(`killed after ${limitMs} ms or by signal`);
      if (!last) return fail('printed no result');
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(last) as Record<string, unknown>;
      } catch {
        return fail('printed a non-JSON result');
      }
      if (parsed.fatal || code !== 0) return fail(`failed: ${JSON.stringify(parsed.fatal ?? parsed)}`);
      resolve(parsed as T);
    });
  });
  child.stdin.end(JSON.stringify(job));
  return {
    ready,
    result,
    kill: () => {
      child.kill('SIGKILL');
    },
  };
}

/** Runs one job (or a `jobs` batch) to completion. */
export function runOsloClient<T = Record<string, unknown>>(job: Record<string, unknown>, limitMs = 30_000): Promise<T> {
  return startOsloClient<T>(job, limitMs).result;
}
