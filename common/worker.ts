import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts the worker-thread module `name` that sits beside the module `from` (its
 * `import.meta.url`). Installed services run compiled JavaScript, so the `.js` file is there;
 * tests and tools run the TypeScript sources through tsx, whose loader a worker thread does not
 * inherit, so the worker registers it first.
 */
export function startWorker(from: string, name: string, options: WorkerOptions = {}): Worker {
  const compiled = new URL(`./${name}.js`, from);
  if (existsSync(fileURLToPath(compiled))) return new Worker(compiled, options);
  const source = new URL(`./${name}.ts`, from);
  if (!existsSync(fileURLToPath(source))) throw new Error(`worker module ${name} not found beside ${from}`);
  // Resolved from here, not from the worker's working directory. require.resolve finds tsx's
  // CommonJS build of the API; the ES module build beside it is the one that works from import().
  const loader = pathToFileURL(
    createRequire(from)
      .resolve('tsx/esm/api')
      .replace(/\.cjs$/, '.mjs'),
  ).href;
  const boot = `import(${JSON.stringify(loader)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(source.href)}); });`;
  return new Worker(boot, { ...options, eval: true });
}
