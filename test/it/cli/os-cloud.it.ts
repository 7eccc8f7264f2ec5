import { strict as assert } from 'node:assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keystoneSession } from '../../../common/keystone/index.js';
import { silentLogger } from '../../../common/log.js';
import { loadConfig } from '../../../conf/load.js';
import { startImageService, type ImageServiceHandle } from '../../../glance-bridge/main.js';
import { loadTestCloud } from '../../../tools/lib/cloud.js';
import { ROOT } from '../../support/fixtures.js';
import { BUSYBOX, REGISTRY } from '../glance-bridge/helpers.js';
import { type CliResult, runBerth } from '../../support/berth-cli.js';

type Result = CliResult;

/** `berth image …` with `--os-cloud`, against the Keystone-protected Glance of the test cloud. */
describe('berth CLI: --os-cloud against the test cloud', function () {
  this.timeout(120_000);
  const cloud = loadTestCloud();
  let home: string;
  let env: NodeJS.ProcessEnv;
  const created: string[] = [];
  let bridge: ImageServiceHandle | undefined;
  const adminSession = () =>
    keystoneSession({
      auth_url: cloud.keystoneUrl,
      username: cloud.admin.username,
      password: cloud.admin.password,
      project_name: cloud.admin.projectName,
      user_domain_name: 'Default',
      project_domain_name: 'Default',
      region_name: '',
    });
  /** Glance's own API with an admin token (openstack image create would wait for data on stdin). */
  const glance = async (method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${cloud.glanceUrl}${path}`, {
      method,
      headers: { 'x-auth-token': await adminSession().token(), 'content-type': 'application/json' },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });

  const berth = (...args: string[]): Promise<Result> => runBerth(args, env, { timeoutMs: 90_000, cwd: ROOT });

  before(() => {
    home = mkdtempSync(join(tmpdir(), 'berth-os-cloud-it-'));
    mkdirSync(join(home, '.config', 'openstack'), { recursive: true });
    const entry = (password: string) =>
      [
        '    auth:',
        `      auth_url: ${cloud.keystoneUrl}`,
        `      username: ${cloud.admin.username}`,
        `      password: "${password}"`,
        `      project_name: ${cloud.admin.projectName}`,
        '      user_domain_name: Default',
        '      project_domain_name: Default',
        `    region_name: ${cloud.vars.OS_REGION_NAME ?? 'RegionOne'}`,
      ].join('\n');
    writeFileSync(
      join(home, '.config', 'openstack', 'clouds.yaml'),
      `clouds:\n  test:\n${entry(cloud.admin.password)}\n  wrong:\n${entry('not-the-password')}\n`,
      { mode: 0o600 },
    );
    // No OS_* of the caller's shell, and no berth.conf: only clouds.yaml speaks.
    env = { PATH: process.env.PATH, HOME: home, BERTH_FROM_SOURCE: '1', BERTH_CONFIG: '', BERTH__DEFAULT__STATE_PATH: home };
  });
  after(async () => {
    for (const id of created) await glance('DELETE', `/v2/images/${id}`).catch(() => undefined);
    await bridge?.close();
    rmSync(home, { recursive: true, force: true });
  });

  it("image list --os-cloud test: the catalog's Glance, with the token", async () => {
    const r = await berth('-f', 'json', 'image', 'list', '--os-cloud', 'test');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(Array.isArray(JSON.parse(r.stdout)));
  });

  it('image list with OS_CLOUD and --os-image-url', async () => {
    env.OS_CLOUD = 'test';
    try {
      const r = await berth('-f', 'json', 'image', 'list', '--os-image-url', cloud.glanceUrl);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(Array.isArray(JSON.parse(r.stdout)));
    } finally {
      delete env.OS_CLOUD;
    }
  });

  it('image show and delete an image made in Glance', async () => {
    const name = `berth-it-os-cloud-${Date.now()}`;
    const res = await glance('POST', '/v2/images', { name, visibility: 'private', disk_format: 'raw', container_format: 'bare' });
    assert.equal(res.status, 201, await res.clone().text());
    const img = (await res.json()) as { id: string };
    created.push(img.id);
    const shown = await berth('-f', 'json', 'image', 'show', img.id, '--os-cloud', 'test');
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal((JSON.parse(shown.stdout) as { name: string }).name, name);
    const deleted = await berth('image', 'delete', img.id, '--os-cloud', 'test');
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal((await berth('image', 'show', img.id, '--os-cloud', 'test')).code, 2);
  });

  it('image import --to-glance: the token goes to a Keystone-protected bridge, which exports into Glance', async () => {
    const user = { auth_url: cloud.keystoneUrl, username: cloud.glance.username, password: cloud.glance.password, project_name: cloud.serviceProject };
    bridge = await startImageService(
      loadConfig({
        env: {},
        overrides: {
          DEFAULT: { state_path: join(home, 'bridge') },
          registry: { insecure_hosts: [REGISTRY], allowed_internal: [REGISTRY] },
          image_store: { listen: '127.0.0.1:0', registry_listen: '', auth_strategy: 'keystone' },
          glance: { api_url: '', ...user },
          keystone_authtoken: user,
        },
      }),
      { log: silentLogger() },
    );
    const r = await berth(
      '-f',
      'json',
      'image',
      'import',
      BUSYBOX,
      '--to-glance',
      '--name',
      `berth-it-os-cloud-${Date.now()}`,
      '--os-cloud',
      'test',
      '--os-image-url',
      bridge.url,
    );
    assert.equal(r.code, 0, r.stderr);
    const exported = JSON.parse(r.stdout) as { id: string; status: string };
    created.push(exported.id);
    assert.equal(exported.status, 'active');
    const inGlance = (await (await glance('GET', `/v2/images/${exported.id}`)).json()) as { status: string; container_format: string };
    assert.deepEqual([inGlance.status, inGlance.container_format], ['active', 'docker']);
    const anonymous = await berth('image', 'import', BUSYBOX, '--os-image-url', bridge.url);
    assert.equal(anonymous.code, 1, 'without credentials the bridge refuses');
    assert.equal(anonymous.stderr.trim().split('\n').length, 1, anonymous.stderr);
  });

  it('an unknown cloud: one line naming the files searched, exit 2', async () => {
    const r = await berth('image', 'list', '--os-cloud', 'nope');
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /cloud "nope" not found; searched .*clouds\.yaml/);
    assert.ok(r.stderr.includes(join(home, '.config', 'openstack', 'clouds.yaml')));
  });

  it('Keystone refusing the password: one line, exit 1', async () => {
    const r = await berth('image', 'list', '--os-cloud', 'wrong');
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /refused the credentials of user .*\[AUTH_FAILED\]/);
  });
});
