import assert from 'node:assert/strict';
import { generatedFiles, readCommitted, staleFiles } from '../../../tools/gen-docs.js';

/** The committed generated files must match what tools/gen-docs.ts produces from conf/options.ts. */
describe('generated files', () => {
  for (const f of generatedFiles) {
    it(`${f.path} is up to date (else: npm run gen)`, () => {
      const committed = readCommitted(f.path);
      assert.notEqual(committed, undefined, `${f.path} is missing: run npm run gen`);
      assert.ok(committed === f.render(), `${f.path} is stale: run npm run gen`);
    });
  }

  it('the --check report agrees', () => {
    assert.deepEqual(staleFiles(), []);
  });
});
