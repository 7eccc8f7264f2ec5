import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { ROOT } from '../../support/fixtures.js';

const exec = promisify(execFile);
interface Result {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * The berth CLI as a subprocess, on what needs no running service: options, formats, exit codes,
 * the broker's refusals (on a port nothing holds), completion. A broker that accepts and never
 * answers is test/it/cli/broker-silence.it.ts (a listening port) and, in-process, broker-probe.test.ts.
 */
describe('berth CLI: options, formats and exit codes (no services)', function () {
  this.timeout(60_000);
  let dir: string;
  let env: NodeJS.ProcessEnv;

  async function berth(...args: string[]): Promise<Result> {
    const t0 = Date.now();
    try {
      const { stdout, stderr } = await exec(join(ROOT, 'tools', 'berth'), args, { env, timeout: 30_000 });
      return { code: 0, stdout, stderr, ms: Date.now() - t0 };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '', ms: Date.now() - t0 };
    }
  }
  const conf = (name: string, text: string) => {
    const f = join(dir, name);
    writeFileSync(f, text);
    return f;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-cli-unit-'));
    // Nothing answers on port 9 (discard): every service is down, and the broker refuses at once.
    env = {
      PATH: process.env.PATH,
      HOME: dir,
      BERTH_FROM_SOURCE: '1',
      BERTH_CONFIG: join(dir, 'none.conf'),
      BERTH__DEFAULT__STATE_PATH: dir,
      BERTH__AGENT__URL: 'http://127.0.0.1:9',
      BERTH__GLANCE__API_URL: 'http://127.0.0.1:9',
    };
    writeFileSync(join(dir, 'none.conf'), '[DEFAULT]\ntransport_url = rabbit://guest:guest@127.0.0.1:9/\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('--version prints the package version', async () => {
    const r = await berth('--version');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version);
  });

  it('--config takes one file and may be repeated, later files winning (it no longer swallows the command)', async () => {
    const a = conf('a.conf', '[DEFAULT]\ntransport_url = rabbit://guest:guest@127.0.0.1:9/\n');
    const b = conf('b.conf', '[DEFAULT]\ntransport_url = rabbit://guest:guest@127.0.0.1:19/\n');
    const one = await berth('--config', a, 'server', 'list');
    assert.equal(one.code, 3, one.stderr);
    assert.match(one.stderr, /cannot reach the broker at rabbit:\/\/127\.0\.0\.1:9\/: connection refused/);
    const two = await berth('--config', a, '--config', b, 'server', 'list');
    assert.equal(two.code, 3, two.stderr);
    assert.match(two.stderr, /127\.0\.0\.1:19\/: connection refused/);
    const missing = await berth('--config', join(dir, 'nosuch.conf'), 'server', 'list');
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /nosuch\.conf: cannot read: ENOENT/);
  });

  it('a refused connection to the broker fails at once, not after the connect time', async () => {
    const base = await berth('--version');
    const r = await berth('server', 'list');
    assert.equal(r.code, 3);
    assert.match(r.stderr, /connection refused/);
    assert.ok(r.ms - base.ms < 3000, `took ${r.ms - base.ms} ms beyond start-up`);
  });

  it('-f table|json|yaml|value|csv and -c on a listing', async () => {
    const table = await berth('status');
    assert.equal(table.code, 3);
    assert.match(table.stdout, /\| Service +\| Pid \| Status +\| Endpoint/);
    const json = JSON.parse((await berth('-f', 'json', 'status')).stdout) as { service: string; status: string }[];
    assert.deepEqual(
      json.map((s) => s.status),
      ['down', 'down', 'down'],
    );
    assert.deepEqual(parseYaml((await berth('-f', 'yaml', 'status')).stdout), json);
    assert.equal((await berth('-f', 'value', '-c', 'service', '-c', 'status', 'status')).stdout, 'berth-images down\nberth-agent down\nberth-compute down\n');
    assert.equal((await berth('status', '-f', 'csv', '-c', 'Service')).stdout, '"Service"\n"berth-images"\n"berth-agent"\n"berth-compute"\n');
    const bad = await berth('-c', 'nope', 'status');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /-c nope: no such column/);
  });

  it('bad usage exits 2 with one line', async () => {
    for (const args of [['-f', 'xml', 'status'], ['--config'], ['completion', 'fish'], ['server', 'show'], ['server', 'delete']]) {
      const r = await berth(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.ok(r.stderr.trim().length > 0, args.join(' '));
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
  });

  it('every waiting command takes --timeout; delete and the actions take several servers', async () => {
    for (const cmd of ['create', 'delete', 'stop', 'rebuild', 'snapshot']) {
      const help = (await berth('server', cmd, '--help')).stdout;
      assert.match(help, /--timeout <s>/, cmd);
      if (!['create', 'snapshot'].includes(cmd)) assert.match(help, /<server\.\.\.>/, cmd);
    }
    assert.match((await berth('image', 'delete', '--help')).stdout, /<image\.\.\.>/);
    assert.match((await berth('image', 'list', '--help')).stdout, /--long/);
  });

  it('berth completion bash completes commands, subcommands, options and formats', async () => {
    const script = (await berth('completion', 'bash')).stdout;
    assert.equal(spawnSync('bash', ['-n'], { input: script }).status, 0, 'valid bash');
    const complete = (...words: string[]) => {
      const line = `${script}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _berth; echo "\${COMPREPLY[*]}"`;
      return spawnSync('bash', ['-c', line], { encoding: 'utf8' }).stdout.trim().split(/\s+/).sort();
    };
    assert.deepEqual(complete('berth', 'se'), ['server']);
    assert.ok(complete('berth', 'server', '').includes('delete'));
    assert.deepEqual(complete('berth', '-f', 'json', 'server', 're'), ['reboot', 'rebuild', 'resize', 'resize-confirm', 'resize-revert', 'restore', 'resume']);
    assert.deepEqual(complete('berth', 'server', 'list', '--lo'), ['--long']);
    assert.deepEqual(complete('berth', '-f', 'y'), ['yaml']);
    const zsh = (await berth('completion', 'zsh')).stdout;
    assert.match(zsh, /^autoload -U \+X bashcompinit && bashcompinit\n/);
  });
});
