import assert from 'node:assert/strict';
import { BerthError } from '../../../common/errors.js';
import { keystoneSession, tokenValidator } from '../../../common/keystone/index.js';
import { silentLogger } from '../../../common/log.js';
import { loadConfig } from '../../../conf/index.js';
import { incomingAuth } from '../../../glance-bridge/keystone-setup.js';
import { createRegistryApp } from '../../../glance-bridge/registry-endpoint/registry-app.js';
import { buildImage } from '../../fakes/image-builder.js';
import { fakeKeystone } from '../../fakes/keystone.js';
import { inProcessAgent, routeGlobalAgentInProcess, serveInProcess, type InProcessServer } from '../../support/in-process.js';
import { appOver, call } from './api-server.js';
import { createHarness, REPO, SOURCE, type Harness } from './harness.js';

const KEYSTONE_USERS = [
  { name: 'glance', password: 'gl', project: 'service', roles: ['admin', 'service'] },
  { name: 'alice', password: 'a', project: 'demo', roles: ['member'] },
  { name: 'bob', password: 'b', project: 'other', roles: ['member', 'reader'] },
  { name: 'ops', password: 'o', project: 'ops', roles: ['admin'] },
];

describe('glance-bridge with auth_strategy = keystone', () => {
  let ks: Awaited<ReturnType<typeof fakeKeystone>>;
  let h: Harness;
  let api: InProcessServer;
  let registry: InProcessServer;
  const tok = (user: string) => ({ 'x-auth-token': ks.issue(user) });

  let restore: () => void;
  beforeEach(async () => {
    // pkgcloud's session goes through Node's global agent, routed in-process here; the validator gets the pool.
    restore = routeGlobalAgentInProcess();
    ks = await fakeKeystone({ users: KEYSTONE_USERS, inProcess: true });
    h = await createHarness();
    const session = keystoneSession({
      auth_url: ks.url,
      username: 'glance',
      password: 'gl',
      project_name: 'service',
      user_domain_name: 'Default',
      project_domain_name: 'Default',
      region_name: '',
    });
    const validator = tokenValidator({ authUrl: ks.url, session, agent: inProcessAgent });
    const app = appOver(h, { auth: { validator, authUri: ks.url } });
    api = serveInProcess(app.callback());
    registry = serveInProcess(createRegistryApp({ images: h.images, blobs: h.blobs, log: silentLogger(), validator }).app.callback());
  });
  afterEach(async () => {
    await api.close();
    await registry.close();
    await h.close();
    await ks.close();
    restore();
  });

  const create = async (headers: Record<string, string>, body: Record<string, unknown>) => {
    const res = await call(api.base, 'POST', '/v2/images', { container_format: 'bare', disk_format: 'raw', ...body }, headers);
    assert.equal(res.status, 201, JSON.stringify(res.json));
    return res.json as { id: string; owner: string };
  };

  it('refuses a missing or unknown token with 401, the error body and the Keystone challenge', async () => {
    for (const [headers, code] of [
      [{}, 'AUTH_REQUIRED'],
      [{ 'x-auth-token': 'tok-forged' }, 'AUTH_INVALID_TOKEN'],
    ] as const) {
      const res = await call(api.base, 'GET', '/v2/images', undefined, headers);
      assert.equal(res.status, 401);
      assert.equal(res.json.error.code, code);
      assert.equal(typeof res.json.error.message, 'string');
      assert.equal(res.headers.get('www-authenticate'), `Keystone uri="${ks.url}"`);
    }
    assert.equal((await call(api.base, 'GET', '/healthcheck')).status, 200);
    assert.equal((await call(api.base, 'GET', '/v2/images', undefined, tok('alice'))).status, 200);
  });

  it('answers version discovery without a token, as Glance does, and nothing else under /v2 (the info routes and /v2/images/ included)', async () => {
    assert.equal((await call(api.base, 'GET', '/')).status, 300);
    assert.equal((await call(api.base, 'GET', '/versions')).status, 200);
    for (const path of ['/v2/info/import', '/v2/info/stores', '/v2/cache', '/v2/images/']) {
      assert.equal((await call(api.base, 'GET', path)).status, 401, path);
    }
    assert.equal((await call(api.base, 'GET', '/v2/info/import', undefined, tok('alice'))).status, 200);
  });

  it('takes the project from the token, not from X-Project-Id, and hides private images from other projects', async () => {
    const image = await create({ ...tok('alice'), 'x-project-id': 'other', 'x-roles': 'admin' }, { name: 'mine', visibility: 'private' });
    assert.equal(image.owner, 'p-demo');
    assert.equal((await call(api.base, 'GET', `/v2/images/${image.id}`, undefined, tok('bob'))).status, 404);
    assert.equal((await call(api.base, 'GET', `/v2/images/${image.id}`, undefined, { ...tok('bob'), 'x-project-id': 'p-demo' })).status, 404);
    const listed = (await call(api.base, 'GET', '/v2/images', undefined, tok('bob'))).json.images as unknown[];
    assert.equal(listed.length, 0);
    assert.equal((await call(api.base, 'GET', `/v2/images/${image.id}`, undefined, tok('alice'))).status, 200);
  });

  it("lets an admin token see and change every project's images", async () => {
    const image = await create(tok('alice'), { name: 'mine', visibility: 'private' });
    assert.equal((await call(api.base, 'GET', '/v2/images', undefined, tok('ops'))).json.images.length, 1);
    const patched = await call(api.base, 'PATCH', `/v2/images/${image.id}`, JSON.stringify([{ op: 'replace', path: '/name', value: 'renamed' }]), {
      ...tok('ops'),
      'content-type': 'application/openstack-images-v2.1-json-patch',
    });
    assert.equal(patched.status, 200, JSON.stringify(patched.json));
    assert.equal(patched.json.name, 'renamed');
  });

  it('applies shared and community visibility to token projects', async () => {
    const shared = await create(tok('alice'), { name: 'shared', visibility: 'shared' });
    const community = await create(tok('alice'), { name: 'community', visibility: 'community' });
    assert.equal((await call(api.base, 'GET', `/v2/images/${shared.id}`, undefined, tok('bob'))).status, 404);
    assert.equal((await call(api.base, 'POST', `/v2/images/${shared.id}/members`, { member: 'p-other' }, tok('alice'))).status, 200);
    assert.equal((await call(api.base, 'GET', `/v2/images/${shared.id}`, undefined, tok('bob'))).status, 200);
    assert.equal((await call(api.base, 'GET', `/v2/images/${community.id}`, undefined, tok('bob'))).status, 200);
    assert.equal((await call(api.base, 'DELETE', `/v2/images/${community.id}`, undefined, tok('bob'))).status, 403);
  });

  it('serves public images to anonymous pulls on the registry endpoint, private ones only with a token of their project', async () => {
    h.registry.addImage(REPO, 'v1', await buildImage({}));
    const image = await h.importer.importImage(SOURCE);
    const manifest = `/v2/berth/${image.id}/manifests/latest`;
    assert.equal((await call(registry.base, 'GET', '/v2/')).status, 200);
    assert.equal((await call(registry.base, 'GET', manifest)).status, 200);
    await h.images.update(image.id, 'active', { visibility: 'private', owner: 'p-demo' });
    assert.equal((await call(registry.base, 'GET', manifest)).status, 404);
    assert.equal((await call(registry.base, 'GET', manifest, undefined, { authorization: `Bearer ${ks.issue('bob')}` })).status, 404);
    assert.equal((await call(registry.base, 'GET', manifest, undefined, { authorization: `Bearer ${ks.issue('alice')}` })).status, 200);
    const basic = Buffer.from(`alice:${ks.issue('alice')}`).toString('base64');
    assert.equal((await call(registry.base, 'GET', manifest, undefined, { authorization: `Basic ${basic}` })).status, 200);
    const forged = await call(registry.base, 'GET', manifest, undefined, { authorization: 'Bearer tok-forged' });
    assert.equal(forged.status, 401);
    assert.equal(forged.json.errors[0].code, 'UNAUTHORIZED');
    assert.match(forged.headers.get('www-authenticate') ?? '', /^Basic realm=/);
  });

  it("maps a repository name on the registry endpoint only to images the puller would list: never another project's community or private import", async () => {
    const real = await buildImage();
    const squatter = await buildImage();
    h.registry.addImage(REPO, 'v1', real);
    h.registry.addImage({ registry: 'evil.test:5000', repository: REPO.repository }, 'v1', squatter);
    const alices = await h.importer.importImage(SOURCE, { owner: 'p-demo', visibility: 'private' });
    // Imported later, so the newest image of team/app:v1: what a name lookup used to serve anyone.
    const bobs = await h.importer.importImage('docker://evil.test:5000/team/app:v1', { owner: 'p-other', visibility: 'community' });
    const digestOf = async (path: string, headers: Record<string, string> = {}) => {
      const res = await call(registry.base, 'GET', path, undefined, headers);
      return res.status === 200 ? res.headers.get('docker-content-digest') : res.status;
    };
    const byName = '/v2/team/app/manifests/v1';
    assert.equal(await digestOf(byName), 404);
    assert.equal(await digestOf(byName, { authorization: `Bearer ${ks.issue('alice')}` }), real.manifestDigest);
    assert.equal(await digestOf(byName, { authorization: `Bearer ${ks.issue('bob')}` }), squatter.manifestDigest);
    assert.equal(await digestOf(`/v2/team/app/blobs/${squatter.layers[0]!.descriptor.digest}`), 404);
    // By id, as the image API reads by id: community for everyone, private for its project only.
    assert.equal(await digestOf(`/v2/berth/${bobs.id}/manifests/latest`), squatter.manifestDigest);
    assert.equal(await digestOf(`/v2/berth/${alices.id}/manifests/latest`), 404);
    assert.equal(await digestOf(`/v2/berth/${alices.id}/manifests/latest`, { authorization: `Bearer ${ks.issue('bob')}` }), 404);
    assert.equal(await digestOf(`/v2/berth/${alices.id}/blobs/${real.config.descriptor.digest}`, { authorization: `Bearer ${ks.issue('bob')}` }), 404);
    // An anonymous pull owns nothing, whatever an admin made an image's owner.
    await h.images.update(alices.id, 'active', { owner: '' });
    assert.equal(await digestOf(`/v2/berth/${alices.id}/manifests/latest`), 404);
  });

  it('refuses to start with auth_strategy = keystone and no service user, naming what is missing', () => {
    const env = (more: Record<string, string>) => ({ BERTH__IMAGE_STORE__AUTH_STRATEGY: 'keystone', ...more });
    assert.throws(() => loadConfig({ env: env({ BERTH__KEYSTONE_AUTHTOKEN__AUTH_URL: ks.url }) }), /\[keystone_authtoken\] username, password/);
    const valid = loadConfig({
      env: env({ BERTH__KEYSTONE_AUTHTOKEN__AUTH_URL: ks.url, BERTH__KEYSTONE_AUTHTOKEN__USERNAME: 'glance', BERTH__KEYSTONE_AUTHTOKEN__PASSWORD: 'gl' }),
    });
    assert.ok(incomingAuth(valid));
    // The service checks again, for configurations not made by loadConfig.
    const bare = { ...valid, keystone_authtoken: { ...valid.keystone_authtoken, auth_url: '', password: '' } };
    assert.throws(
      () => incomingAuth(bare),
      (e: BerthError) => e.code === 'INVALID_CONFIG' && /\[keystone_authtoken\] auth_url, password/.test(e.message),
    );
    assert.equal(incomingAuth(loadConfig({ env: {} })), null);
  });
});
