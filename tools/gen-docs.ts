/**
 * Writes the files generated from conf/options.ts:
 *   conf/berth.conf.sample  <- renderSample()
 *   docs/configuration.md   <- renderReference()
 *   docs/rpc-reference.md   <- renderRpcReference() (driver/compute/rpc-docs.ts)
 *   docs/agent-openapi.json <- renderAgentOpenApi() (its error codes from agent/client/errors.ts)
 *
 *   node --import tsx tools/gen-docs.ts          regenerate them
 *   node --import tsx tools/gen-docs.ts --check  write nothing; exit 1 naming each stale file
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { renderAgentOpenApi } from '../agent/openapi.js';
import { renderReference, renderSample } from '../conf/sample.js';
import { renderRpcReference } from '../driver/compute/rpc-reference.js';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

export interface GeneratedFile {
  /** Relative to the repository root, with forward slashes. */
  path: string;
  render: () => string;
}

export const generatedFiles: readonly GeneratedFile[] = [
  { path: 'conf/berth.conf.sample', render: renderSample },
  { path: 'docs/configuration.md', render: renderReference },
  { path: 'docs/rpc-reference.md', render: renderRpcReference },
  { path: 'docs/agent-openapi.json', render: renderAgentOpenApi },
];

/** The committed text of a generated file, or undefined when it does not exist. */
export function readCommitted(path: string, root = repoRoot): string | undefined {
  try {
    return readFileSync(join(root, path), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** One line per generated file that is missing or differs from what the generator produces. */
export function staleFiles(root = repoRoot): string[] {
  const stale: string[] = [];
  for (const f of generatedFiles) {
    const committed = readCommitted(f.path, root);
    if (committed === undefined) stale.push(`${f.path} is missing: run npm run gen`);
    else if (committed !== f.render()) stale.push(`${f.path} is stale: run npm run gen`);
  }
  return stale;
}

function main(argv: string[]): number {
  const args = argv.slice(2);
  if (args.some((a) => a !== '--check')) {
    process.stderr.write('usage: node --import tsx tools/gen-docs.ts [--check]\n');
    return 2;
  }
  if (args.includes('--check')) {
    const stale = staleFiles();
    for (const line of stale) process.stderr.write(`${line}\n`);
    return stale.length ? 1 : 0;
  }
  for (const f of generatedFiles) {
    const text = f.render();
    if (readCommitted(f.path) === text) continue;
    writeFileSync(join(repoRoot, f.path), text);
    process.stdout.write(`wrote ${f.path}\n`);
  }
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv);
}
