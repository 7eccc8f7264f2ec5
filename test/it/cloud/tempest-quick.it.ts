import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../../support/fixtures.js';

interface Summary {
  passed: number;
  skipped: number;
  failed: number;
  total: number;
  failed_tests: string[];
  skipped_tests: Record<string, string>;
}

/** Tests of the quick set that every run must pass, not skip: the set is about a working node. */
const MIN_PASSED = 35;

/**
 * Tempest's compute API subset against the test cloud with a Berth node joined
 * (tools/dev/tempest.sh run quick; docs/tempest.md). The script's own node, workspace and state
 * directory; its result is read from the run's subunit stream (summary.json).
 */
describe('Tempest compute subset (tools/dev/tempest.sh run quick)', function () {
  this.timeout(15 * 60_000);
  let state: string;

  before(() => {
    state = mkdtempSync(join(tmpdir(), 'berth-tempest-it-'));
  });
  after(() => {
    if (state) rmSync(state, { recursive: true, force: true });
  });

  it('passes with no failure', async () => {
    const run = await new Promise<{ code: number | null; out: string }>((resolve) => {
      execFile(
        'bash',
        [join(ROOT, 'tools/dev/tempest.sh'), 'run', 'quick'],
        {
          env: {
            ...process.env,
            BERTH_TEMPEST_STATE: state,
            BERTH_TEMPEST_HOST: 'berth-tempest-it',
            BERTH_TEMPEST_PORT_BASE: '43500',
            BERTH_TEMPEST_TRAIT: 'CUSTOM_BERTH_TEMPEST_IT',
          },
          timeout: 14 * 60_000,
          killSignal: 'SIGTERM',
          maxBuffer: 64 << 20,
        },
        (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, out: `${stdout}\n${stderr}` }),
      );
    });
    let summary: Summary;
    try {
      summary = JSON.parse(readFileSync(join(state, 'summary.json'), 'utf8')) as Summary;
    } catch {
      assert.fail(`tempest.sh left no summary (exit ${run.code}):\n${run.out.slice(-4000)}`);
    }
    assert.deepEqual(summary.failed_tests, [], `failed:\n${summary.failed_tests.join('\n')}\n${run.out.slice(-4000)}`);
    assert.equal(summary.failed, 0);
    assert.ok(summary.passed >= MIN_PASSED, `only ${summary.passed} passed (${summary.skipped} skipped): ${JSON.stringify(summary.skipped_tests, null, 1)}`);
    assert.equal(run.code, 0, run.out.slice(-4000));
  });
});
