import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliContext } from '../../../tools/cli/context.js';
import { cloudsYamlFiles, resolveOsCredentials } from '../../../tools/cli/os-cloud.js';
import { UsageError } from '../../../tools/cli/usage-error.js';
import { fakeKeystone } from '../../fakes/keystone.js';
import { inProcessAgent, routeGlobalAgentInProcess, serveInProcess } from '../../support/in-process.js';

const cloudYaml = (name: string, user: string, extra = '') => `clouds:
  ${name}:
    auth:
      auth_url: http://127.0.0.1:5000/v3
      username: ${user}
      password: "s3cret"
      project_name: demo
      user_domain_name: Users
${extra}`;

describe('berth CLI: OpenStack credentials (--os-cloud, clouds.yaml, OS_*)', () => {
  let root: string;
  let dirs: { cwd: string; home: string; systemDir: string };
  const write = (dir: string, text: string) => {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'clouds.yaml'), text);
  };
  const resolveWith = (cloud: string | undefined, env: NodeJS.ProcessEnv = {}) => resolveOsCredentials({ ...dirs, env, ...(cloud ? { cloud } : {}) });

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'berth-os-cloud-'));
    dirs = { cwd: join(root, 'work'), home: join(root, 'home'), systemDir: join(root, 'etc') };
    mkdirSync(dirs.cwd, { recursive: true });
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('searches ./clouds.yaml, ~/.config/openstack, /etc/openstack in that order', () => {
    assert.deepEqual(cloudsYamlFiles({ ...dirs, env: {} }), [
      join(dirs.cwd, 'clouds.yaml'),
      join(dirs.home, '.config', 'openstack', 'clouds.yaml'),
      join(dirs.systemDir, 'clouds.yaml'),
    ]);
    write(dirs.systemDir, cloudYaml('test', 'from-etc'));
    assert.equal(resolveWith('test')?.creds.username, 'from-etc');
    write(join(dirs.home, '.config', 'openstack'), cloudYaml('test', 'from-home'));
    assert.equal(resolveWith('test')?.creds.username, 'from-home');
    write(dirs.cwd, cloudYaml('test', 'from-cwd'));
    assert.equal(resolveWith('test')?.creds.username, 'from-cwd');
  });

  it('reads the auth block, domains (default Default) and region_name', () => {
    write(dirs.cwd, cloudYaml('test', 'alice', '    region_name: RegionTwo\n'));
    const found = resolveWith('test')!;
    assert.deepEqual(found.creds, {
      auth_url: 'http://127.0.0.1:5000/v3',
      username: 'alice',
      password: 's3cret',
      project_name: 'demo',
      user_domain_name: 'Users',
      project_domain_name: 'Default',
      region_name: 'RegionTwo',
    });
    assert.match(found.source, /clouds\.yaml \(cloud test\)$/);
  });

  it('OS_CLOUD selects the cloud; a file without it falls through to the next', () => {
    write(dirs.cwd, cloudYaml('other', 'x'));
    write(join(dirs.home, '.config', 'openstack'), cloudYaml('test', 'from-home'));
    assert.equal(resolveWith(undefined, { OS_CLOUD: 'test' })?.creds.username, 'from-home');
  });

  it('an unknown cloud is a usage error naming every file searched', () => {
    write(dirs.cwd, cloudYaml('other', 'x'));
    assert.throws(
      () => resolveWith('nope'),
      (e: unknown) =>
        e instanceof UsageError && e.message.includes('"nope" not found') && cloudsYamlFiles({ ...dirs, env: {} }).every((f) => e.message.includes(f)),
    );
  });

  it('broken YAML, missing fields and other auth types are usage errors naming the file', () => {
    write(dirs.cwd, 'clouds: [unclosed');
    assert.throws(
      () => resolveWith('test'),
      (e: unknown) => e instanceof UsageError && /not valid YAML/.test(e.message),
    );
    write(dirs.cwd, 'clouds:\n  test:\n    auth:\n      auth_url: http://k/v3\n      username: u\n');
    assert.throws(
      () => resolveWith('test'),
      (e: unknown) => e instanceof UsageError && /auth lacks password, project_name/.test(e.message),
    );
    write(dirs.cwd, 'clouds:\n  test:\n    auth_type: token\n    auth: {}\n');
    assert.throws(
      () => resolveWith('test'),
      (e: unknown) => e instanceof UsageError && /auth_type token/.test(e.message),
    );
  });

  it('without a cloud: the OS_* variables, or nothing when OS_AUTH_URL is unset', () => {
    assert.equal(resolveWith(undefined, {}), null);
    const env = { OS_AUTH_URL: 'http://k:5000/v3', OS_USERNAME: 'bob', OS_PASSWORD: 'pw', OS_PROJECT_NAME: 'p', OS_REGION_NAME: 'R1' };
    assert.deepEqual(resolveWith(undefined, env)?.creds, {
      auth_url: 'http://k:5000/v3',
      username: 'bob',
      password: 'pw',
      project_name: 'p',
      user_domain_name: 'Default',
      project_domain_name: 'Default',
      region_name: 'R1',
    });
    assert.throws(() => resolveWith(undefined, { OS_AUTH_URL: 'http://k/v3', OS_USERNAME: 'bob' }), /OS_PASSWORD, OS_PROJECT_NAME are not/);
  });

  it("image commands send the token to the catalog's image endpoint", async () => {
    const seen: string[] = [];
    const glance = serveInProcess((req: IncomingMessage, res: ServerResponse) => {
      seen.push(String(req.headers['x-auth-token'] ?? ''));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ images: [{ id: 'i-1', name: 'one' }] }));
    });
    // pkgcloud's session goes through Node's global agent, routed in-process; the image client gets the pool.
    const restore = routeGlobalAgentInProcess();
    const ks = await fakeKeystone({
      users: [{ name: 'alice', password: 'a', project: 'demo', roles: ['member'] }],
      catalog: { image: glance.base },
      inProcess: true,
    });
    const saved = { ...process.env };
    try {
      for (const k of Object.keys(process.env)) if (k.startsWith('OS_')) delete process.env[k];
      Object.assign(process.env, { OS_AUTH_URL: ks.url, OS_USERNAME: 'alice', OS_PASSWORD: 'a', OS_PROJECT_NAME: 'demo' });
      writeFileSync(join(root, 'berth.conf'), '[DEFAULT]\n');
      const ctx = new CliContext({ config: [join(root, 'berth.conf')] }, { agent: inProcessAgent });
      assert.deepEqual(
        (await ctx.images().listImages()).map((i) => i.id),
        ['i-1'],
      );
      assert.match(seen[0] ?? '', /^tok-/);
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
      await ks.close();
      await glance.close();
      restore();
    }
  });
});
