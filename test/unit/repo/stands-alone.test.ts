import { strict as assert } from 'node:assert';
import { readdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { outsidePaths, projectFiles, projectOutsidePaths } from '../../support/outside-paths.js';
import { ROOT } from '../../support/fixtures.js';

// A user's clone has no sibling folders: nothing in the product, the tools or the tests may
// name a path above the repository root (issue: a fresh clone passes its own tests).
describe('the repository stands alone', () => {
  it('no source, script, config or doc file names a path above the repository root', () => {
    const files = projectFiles(ROOT);
    assert.ok(files.length > 100, `only ${files.length} project files found under ${ROOT}`);
    assert.ok(files.includes('test/support/fixtures.ts') && files.includes('.ci/run') && files.includes('tools/berth'));
    const found = projectOutsidePaths(ROOT).map((p) => `${p.file}:${p.line}: ${p.text} (${p.why})`);
    assert.deepEqual(found, []);
  });

  // .ci/run clones the checkout into an empty folder and names the clone in BERTH_CI_CLONE.
  if (process.env.BERTH_CI_CLONE)
    it("in CI, runs from a clone whose folder holds nothing else, as a user's clone", () => {
      assert.equal(ROOT, process.env.BERTH_CI_CLONE);
      assert.deepEqual(readdirSync(dirname(ROOT)), [basename(ROOT)]);
    });

  describe('the check itself', () => {
    // The samples spell the parent folder %UP%, the sibling %SH% and the variable's tail %ED%, so that this file
    // does not name what it tests for.
    const sample = (text: string): string => text.replaceAll('%UP%', '..').replaceAll('%ED%', 'ED').replaceAll('%SH%', 'shared');
    const flagged = (file: string, text: string): string[] => outsidePaths(file, sample(text)).map((p) => p.text);

    it('finds the lookups a checkout-only test used to make', () => {
      assert.equal(flagged('test/support/f.ts', "export const S = process.env.BERTH_SHAR%ED% ?? resolve(ROOT, '%UP%', 'shared');").length, 2);
      assert.deepEqual(flagged('test/support/f.ts', "const p = resolve(ROOT, '%UP%', 'other');"), [sample("resolve(ROOT, '%UP%', 'other');")]);
      assert.deepEqual(flagged('test/support/f.ts', "join(dirname(fileURLToPath(import.meta.url)), '%UP%', '%UP%', '%UP%', 'x')").length, 1);
      assert.deepEqual(flagged('test/support/f.ts', "readFileSync('%UP%/%UP%/%UP%/%SH%/docs/a.md')").length, 2);
      assert.deepEqual(flagged('test/unit/a.test.ts', "new URL('%UP%/%UP%/%UP%/fixtures/x.json', import.meta.url)"), ['../../../fixtures/x.json']);
      assert.deepEqual(flagged('tools/dev/x.sh', 'ROOT=$(cd "$(dirname "$0")/%UP%/%UP%/%UP%" && pwd)').length, 1);
      assert.deepEqual(flagged('tools/x.sh', 'cd "$ROOT/%UP%/%SH%/fixtures"').length, 2);
      assert.deepEqual(flagged('.ci/run', 'cp %UP%/%UP%/fixtures/* test/').length, 1);
    });

    it('lets paths that stay inside the root pass', () => {
      assert.deepEqual(flagged('test/support/f.ts', "export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');"), []);
      assert.deepEqual(flagged('test/unit/agent/a.test.ts', "import { x } from '../../../agent/app.js';"), []);
      assert.deepEqual(flagged('tools/dev/cloud.sh', 'ROOT=$(cd "$(dirname "$0")/../.." && pwd)'), []);
      assert.deepEqual(flagged('glance-bridge/layer-scan.ts', "if (parts.includes('..')) refuse();"), []);
      // A tenant's hostile input in a test is data, not a path of the project's.
      assert.deepEqual(flagged('test/unit/glance-bridge/blobs.test.ts', "store.has('sha256:../../etc/passwd')"), []);
      assert.deepEqual(flagged('tools/lib/paths.ts', "const up = resolve(dir, '..');"), []);
    });
  });
});
