import { printAborted } from './report.js';

/**
 * Runs one benchmark under a hard deadline. Clean-up steps registered with `cleanup` run in
 * reverse order whatever happens: normal end, failure, deadline, SIGINT or SIGTERM.
 * Exit status: 0 PASS, 1 FAIL, 2 aborted.
 */
export interface BenchRun {
  cleanup(step: () => Promise<unknown>): void;
  log(line: string): void;
}

export function runBench(name: string, deadlineMs: number, body: (run: BenchRun) => Promise<boolean>): void {
  const steps: (() => Promise<unknown>)[] = [];
  let finishing = false;
  const finish = async (code: number): Promise<never> => {
    if (!finishing) {
      finishing = true;
      clearTimeout(deadline);
      for (const step of steps.reverse()) await step().catch((err: unknown) => process.stderr.write(`clean-up step failed: ${String(err)}\n`));
    }
    process.exit(code);
  };
  const abort = (err: unknown): void => {
    printAborted(name, err);
    void finish(2);
  };
  const deadline = setTimeout(() => abort(new Error(`deadline of ${deadlineMs / 1000} s passed`)), deadlineMs);
  process.once('SIGINT', () => abort(new Error('interrupted')));
  process.once('SIGTERM', () => abort(new Error('terminated')));
  const run: BenchRun = {
    cleanup: (step) => {
      steps.push(step);
    },
    log: (line) => process.stderr.write(`[${name}] ${line}\n`),
  };
  body(run).then((pass) => finish(pass ? 0 : 1), abort);
}
