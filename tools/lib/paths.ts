import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder holding Berth's package.json, whether running from sources or from dist/. */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'driver'))) return dir;
    const up = resolve(dir, '..');
    if (up === dir) throw new Error('cannot find the Berth installation (no package.json above this file)');
    dir = up;
  }
}

export type ServiceName = 'agent' | 'images' | 'compute';

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
