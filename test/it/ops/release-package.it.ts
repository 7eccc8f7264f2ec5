import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../../support/fixtures.js';
import { startCacheRegistry, type CacheRegistry } from '../../support/npm-cache-registry.js';

const exec = promisify(execFile);

/**
 * The release artifact as an operator installs it: `npm run pack` builds it, `npm install
 * --omit=dev` puts it into an empty folder (packages from a loopback registry that serves only the
 * locked versions out of the local npm cache, into a fresh cache: no internet), and the installed
 * `berth` answers --version and conf check. It takes minutes: the
 * install fetches some 400 packages.
 */
describe('release package: built by one command, installed into a clean folder', function () {
  this.timeout(1_200_000);
  let scratch: string;
  let tarball: string;
  let registry: CacheRegistry;
  let installed: string;
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const env = (): NodeJS.ProcessEnv => ({ PATH: process.env.PATH, HOME: process.env.HOME, BERTH_CONFIG: '' });

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'berth-release-'));
    const out = join(scratch, 'out');
    const r = await exec('npm', ['run', '--silent', 'pack'], { cwd: ROOT, env: { ...process.env, BERTH_RELEASE_DIR: out }, timeout: 600_000 });
    tarball = r.stdout.trim().split('\n').at(-1)!;
    registry = await startCacheRegistry(join(ROOT, 'package-lock.json'), process.env.npm_config_cache ?? join(homedir(), '.npm'));
    installed = join(scratch, 'node');
    mkdirSync(installed);
    writeFileSync(join(installed, 'package.json'), '{"name":"berth-node","private":true}\n');
    // sqlite3's installer fetches a prebuilt binary from GitHub, else compiles for minutes. This
    // machine cannot reach GitHub: the binary this checkout built stands for the download, handed
    // to the installer as its local prebuild (the same file name and layout as the release asset).
    const prebuilds = join(scratch, 'prebuilds');
    mkdirSync(join(prebuilds, 'build', 'Release'), { recursive: true });
    copyFileSync(join(ROOT, 'node_modules', 'sqlite3', 'build', 'Release', 'node_sqlite3.node'), join(prebuilds, 'build', 'Release', 'node_sqlite3.node'));
    const sqliteVersion = (JSON.parse(readFileSync(join(ROOT, 'node_modules', 'sqlite3', 'package.json'), 'utf8')) as { version: string }).version;
    for (const napi of [3, 6]) {
      await exec('tar', ['czf', join(prebuilds, `sqlite3-v${sqliteVersion}-napi-v${napi}-linux-x64.tar.gz`), '-C', prebuilds, 'build']);
    }
    await exec('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', `--registry=${registry.url}`, `--cache=${join(scratch, 'npm-cache')}`, tarball], {
      cwd: installed,
      env: { ...process.env, npm_config_loglevel: 'error', npm_config_sqlite3_local_prebuilds: prebuilds },
      timeout: 1_100_000,
      maxBuffer: 64 * 1024 * 1024,
    });
  });
  after(async () => {
    await registry?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('the tarball holds the compiled services and CLI, the units and the sample, and no sources, tests or development scripts', async () => {
    assert.match(tarball, new RegExp(`berth-${version.replace(/\./g, '\\.')}\\.tgz$`));
    const { stdout } = await exec('tar', ['tzf', tarball]);
    const files = stdout.split('\n').filter(Boolean);
    for (const f of [
      'package/package.json',
      'package/npm-shrinkwrap.json',
      'package/tools/berth',
      'package/dist/tools/cli/berth.js',
      'package/dist/driver/main.js',
      'package/dist/agent/main.js',
      'package/dist/glance-bridge/main.js',
      'package/tools/systemd/berth-compute.service',
      'package/tools/systemd/berth-agent.service',
      'package/tools/systemd/berth-images.service',
      'package/conf/berth.conf.sample',
    ]) {
      assert.ok(files.includes(f), `${f} missing`);
    }
    for (const f of files) assert.doesNotMatch(f, /\.ts$|^package\/test\/|^package\/tools\/dev\/|^package\/dist\/tools\/bench\//, f);
    const manifest = JSON.parse((await exec('tar', ['xzOf', tarball, 'package/package.json'])).stdout) as Record<string, unknown>;
    assert.equal(manifest.devDependencies, undefined);
    assert.equal(manifest.scripts, undefined);
    assert.ok(Array.isArray(manifest.files));
  });

  it('installs with production dependencies only, from the local cache', () => {
    // Optional peers npm looks up and does not install (pg-native, encoding, ...) may be unknown;
    // every tarball asked for was served from the cache.
    assert.deepEqual(
      registry.unknown.filter((p) => p.startsWith('-/')),
      [],
    );
    assert.ok(registry.served.length > 100, `${registry.served.length} tarballs served`);
    const modules = readdirSync(join(installed, 'node_modules'));
    for (const dev of ['typescript', 'tsx', 'sinon', 'eslint', 'prettier']) assert.ok(!modules.includes(dev), `${dev} was installed`);
    // pkgcloud's liboneandone depends on an old mocha itself; the project's own (a dev dependency) is not there.
    const mocha = join(installed, 'node_modules', 'mocha', 'package.json');
    if (existsSync(mocha)) assert.doesNotMatch((JSON.parse(readFileSync(mocha, 'utf8')) as { version: string }).version, /^12\./);
    // Every package installed is one a production dependency needs (a non-dev entry of the lock).
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
    const needed = new Set(
      Object.entries(lock.packages)
        .filter(([path, e]) => path && !e.dev)
        .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length)),
    );
    const top = modules.flatMap((m) => (m.startsWith('@') ? readdirSync(join(installed, 'node_modules', m)).map((n) => `${m}/${n}`) : [m]));
    const extra = top.filter((m) => !m.startsWith('.') && m !== 'berth' && !needed.has(m));
    assert.deepEqual(extra, [], `installed but needed by no production dependency: ${extra.join(', ')}`);
    for (const prod of ['berth', 'amqplib', 'koa', 'sequelize', 'sqlite3', 'prom-client']) assert.ok(modules.includes(prod), `${prod} missing`);
    assert.ok(existsSync(join(installed, 'node_modules', '.bin', 'berth')));
  });

  it('the installed berth prints its version and checks a configuration (exit 2 on a bad one)', async () => {
    const berth = join(installed, 'node_modules', '.bin', 'berth');
    const v = await exec(berth, ['--version'], { env: env() });
    assert.equal(v.stdout.trim(), version);
    const sample = join(installed, 'node_modules', 'berth', 'conf', 'berth.conf.sample');
    const ok = await exec(berth, ['conf', 'check', sample], { env: env() });
    assert.match(ok.stdout, /OK/);
    const bad = join(scratch, 'bad.conf');
    writeFileSync(bad, '[DEFAULT]\ntransport_url = http://example\n');
    await assert.rejects(exec(berth, ['conf', 'check', bad], { env: env() }), (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 2);
      assert.match(e.stderr, /transport_url/);
      return true;
    });
    // The development stack is not part of a release: berth dev says so.
    await assert.rejects(exec(berth, ['dev', 'services', 'status'], { env: env() }), (e: { code: number; stderr: string }) => {
      assert.equal(e.code, 2);
      assert.match(e.stderr, /source checkout/);
      return true;
    });
  });
});
