import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../support/fixtures.js';

// The project's rule: small modules with one job, no product file over 350 lines. Product is every
// TypeScript file under these folders; there is no exception list.
const PRODUCT_DIRS = ['agent', 'common', 'conf', 'driver', 'glance-bridge', 'tools'];
const MAX_LINES = 350;

/** Lines as `wc -l` counts them: newline characters. */
function lineCount(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

function tsFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : tsFiles(rel);
    return e.isFile() && e.name.endsWith('.ts') ? [rel] : [];
  });
}

/** `file: N lines` for each file over the limit. */
function oversized(files: { file: string; text: string }[], max = MAX_LINES): string[] {
  return files.flatMap(({ file, text }) => {
    const n = lineCount(text);
    return n > max ? [`${file}: ${n} lines (limit ${max})`] : [];
  });
}

describe('product file size', () => {
  it(`no product .ts file is over ${MAX_LINES} lines`, () => {
    const files = PRODUCT_DIRS.flatMap(tsFiles);
    assert.ok(files.length > 100, `only ${files.length} product files found under ${ROOT}`);
    assert.ok(files.includes(join('tools', 'cli', 'commands', 'server.ts')) && files.includes(join('conf', 'options.ts')));
    assert.deepEqual(oversized(files.map((file) => ({ file, text: readFileSync(join(ROOT, file), 'utf8') }))), []);
  });

  describe('the check itself', () => {
    const lines = (n: number): string => 'x;\n'.repeat(n);

    it('counts lines as wc -l does', () => {
      assert.equal(lineCount(''), 0);
      assert.equal(lineCount('a'), 0);
      assert.equal(lineCount('a\n'), 1);
      assert.equal(lineCount('a\nb'), 1);
      assert.equal(lineCount(lines(351)), 351);
    });

    it('names a file over the limit with its count, and lets one at the limit pass', () => {
      assert.deepEqual(
        oversized([
          { file: 'conf/big.ts', text: lines(351) },
          { file: 'conf/ok.ts', text: lines(350) },
        ]),
        ['conf/big.ts: 351 lines (limit 350)'],
      );
    });
  });
});
