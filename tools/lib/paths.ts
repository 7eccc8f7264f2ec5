import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The folder holding Berth's package.json, whether running from sources, from dist/, or from an
 * installed release package (which has dist/ but no sources beside its package.json).
 */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (isBerthPackage(join(dir, 'package.json'))) return dir;
    const up = resolve(dir, '..');
    if (up === dir) throw new Error('cannot find the Berth installation (no package.json above this file)');
    dir = up;
  }
}

function isBerthPackage(file: string): boolean {
  if (!existsSync(file)) return false;
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { name?: string }).name === 'berth';
  } catch {
    return false;
  }
}

export type ServiceName = 'agent' | 'images' | 'compute';

/**
 * Environment every Berth service runs with (`berth up`, the systemd units in tools/systemd/, the
 * benchmarks' service processes): glibc gives each thread that allocates its own malloc arena,
 * and memory freed there stays resident; with node's thread pool busy (file writes, DNS, zlib)
 * that added 10–30 MB to the agent's RSS with 500 instances. Two arenas keep it flat. Variables
 * already set in the environment win.
 */
export const SERVICE_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };

const ENTRY: Record<ServiceName, string> = { agent: 'agent/main', images: 'glance-bridge/main', compute: 'driver/main' };

/**
 * How to run a service: the compiled entry point when built, else (or with BERTH_FROM_SOURCE set)
 * the TypeScript source via tsx.
 */
export function serviceCommand(name: ServiceName): { command: string; args: string[] } {
  const root = projectRoot();
  const built = join(root, 'dist', `${ENTRY[name]}.js`);
  if (!process.env.BERTH_FROM_SOURCE && existsSync(built)) return { command: process.execPath, args: ['--enable-source-maps', built] };
  return { command: process.execPath, args: ['--import', 'tsx', join(root, `${ENTRY[name]}.ts`)] };
}
