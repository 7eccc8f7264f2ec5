import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { projectRoot } from '../../lib/paths.js';

const ROOT = projectRoot();
const run = promisify(execFile);

export interface NodeCommand {
  args: string[];
  runtime: string;
}

/**
 * How to run the TypeScript module `entry` (relative to the project root, without extension) as
 * compiled JavaScript, as installed services run, so that the TypeScript loader's own memory and
 * start-up are not measured: a private `tsc` build under node_modules/.cache/`cacheName` (there it
 * stays out of the tree and still resolves the dependencies), else the sources through tsx.
 */
export async function compiledCommand(entry: string, cacheName: string): Promise<NodeCommand> {
  const outDir = join(ROOT, 'node_modules/.cache', cacheName);
  const started = Date.now();
  // Type errors elsewhere in the tree do not stop tsc from emitting, hence the freshness check.
  await run(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', outDir], {
    cwd: ROOT,
    timeout: 300_000,
  }).catch(() => undefined);
  const compiled = join(outDir, `${entry}.js`);
  if (existsSync(compiled) && statSync(compiled).mtimeMs >= started - 1000) return { args: [compiled], runtime: `node <fresh tsc build>/${entry}.js` };
  return { args: ['--import', 'tsx', join(ROOT, `${entry}.ts`)], runtime: `node --import tsx ${entry}.ts` };
}
