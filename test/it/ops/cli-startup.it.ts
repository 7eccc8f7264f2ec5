import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../../support/fixtures.js';

const exec = promisify(execFile);

/**
 * What the CLI loads for commands that need neither Keystone nor the broker nor a database: a
 * resolve hook records every package the CLI's own modules import. pkgcloud (~0.3 s), sequelize,
 * umzug, amqplib, pg and koa must stay unloaded; their commands load them when they run. (The
 * time itself is measured by `npm run bench:cli-start`, as a ratio against `node -e 0`.)
 */
describe('CLI start-up loads only what the command needs', function () {
  this.timeout(60_000);
  let scratch: string;
  const HEAVY = ['pkgcloud', 'sequelize', 'umzug', 'amqplib', 'pg', 'koa', 'sqlite3', 'prom-client'];

  before(() => {
    scratch = mkdtempSync(join(tmpdir(), 'berth-cli-load-'));
    writeFileSync(
      join(scratch, 'hook.mjs'),
      `export async function resolve(spec, ctx, next) {
  const r = await next(spec, ctx);
  const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(r.url);
  if (m && !/node_modules/.test(ctx.parentURL ?? '')) process.stderr.write('LOADED ' + m[1] + '\\n');
  return r;
}
`,
    );
    writeFileSync(
      join(scratch, 'register.mjs'),
      `import { register } from 'node:module';\nregister(${JSON.stringify(`file://${join(scratch, 'hook.mjs')}`)});\n`,
    );
    writeFileSync(join(scratch, 'berth.conf'), '[DEFAULT]\nhost = load-test\n');
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  async function loaded(...args: string[]): Promise<string[]> {
    const r = await exec(process.execPath, ['--import', join(scratch, 'register.mjs'), '--import', 'tsx', join(ROOT, 'tools', 'cli', 'berth.ts'), ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, BERTH_CONFIG: '' },
      cwd: ROOT,
    });
    return [...new Set(r.stderr.split('\n').flatMap((l) => (l.startsWith('LOADED ') ? [l.slice(7)] : [])))];
  }

  for (const args of [['--version'], ['conf', 'check', 'CONF'], ['conf', 'sample'], ['server', '--help']]) {
    it(`berth ${args.join(' ')} loads none of ${HEAVY.join(', ')}`, async () => {
      const pkgs = await loaded(...args.map((a) => (a === 'CONF' ? join(scratch, 'berth.conf') : a)));
      assert.ok(pkgs.includes('commander'), `the hook saw nothing: ${pkgs.join(', ')}`);
      assert.deepEqual(
        pkgs.filter((p) => HEAVY.includes(p)),
        [],
      );
    });
  }
});
