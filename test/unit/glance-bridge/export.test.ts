import assert from 'node:assert/strict';
import { ImageCache } from '../../../agent/images.js';
import { BerthError } from '../../../common/errors.js';
import { keystoneSession, tokenValidator, type KeystoneCredentials } from '../../../common/keystone/index.js';
import { silentLogger } from '../../../common/log.js';
import { loadConfig } from '../../../conf/index.js';
import { createImageClient } from '../../../glance-bridge/client/http.js';
import type { GlanceImage, ImageService } from '../../../glance-bridge/client/types.js';
import { exportImage, SOURCE_DIGEST_PROPERTY, SOURCE_IMAGE_PROPERTY } from '../../../glance-bridge/archive/export.js';
import { FakeContainerRuntime } from '../../fakes/container-runtime.js';
import { buildImage } from '../../fakes/image-builder.js';
import { fakeKeystone } from '../../fakes/keystone.js';
import { inProcessAgent, routeGlobalAgentInProcess, serveInProcess, type InProcessServer } from '../../support/in-process.js';
import { appOver, call } from './api-server.js';
import { createHarness, REPO, SOURCE, type Harness } from './harness.js';

/**
 * Bridge A (noauth, holding an imported image) exports into bridge B, which plays the cloud's
 * Glance with Keystone auth on; an agent-side image client with `[glance]` credentials then
 * boots from B. B is on loopback, as the image clients under test must connect to it; A is called
 * in-process; Keystone is the fake.
 */
describe('glance-bridge export into a Keystone-protected Glance', () => {
  let ks: Awaited<ReturnType<typeof fakeKeystone>>;
  let a: Harness;
  let b: Harness;
  let apiA: InProcessServer;
  let apiB: InProcessServer;
  let restore: () => void;
  const catalog: Record<string, string> = {};
  let glanceCreds: KeystoneCredentials;
  let target: ImageService;
  let imageId: string;

  beforeEach(async () => {
    // pkgcloud's sessions go through Node's global agent, routed in-process; every other client gets the pool.
    restore = routeGlobalAgentInProcess();
    ks = await fakeKeystone({
      inProcess: true,
      users: [
        { name: 'glance', password: 'gl', project: 'service', roles: ['admin', 'service'] },
        { name: 'bob', password: 'b', project: 'other', roles: ['member'] },
      ],
      catalog,
    });
    glanceCreds = {
      auth_url: ks.url,
      username: 'glance',
      password: 'gl',
      project_name: 'service',
      user_domain_name: 'Default',
      project_domain_name: 'Default',
      region_name: '',
    };
    [a, b] = [await createHarness(), await createHarness()];
    // No validation cache: B must notice a revoked token at once.
    const validator = tokenValidator({ authUrl: ks.url, session: keystoneSession(glanceCreds), maxCacheSeconds: 0, agent: inProcessAgent });
    const appB = appOver(b, { auth: { validator, authUri: ks.url } });
    // The fake runtime stops reading an archive at its end marker; koa would print the cut-off download.
    appB.silent = true;
    apiB = serveInProcess(appB.callback());
    catalog.image = apiB.base;
    target = createImageClient({ url: apiB.base, keystone: glanceCreds, agent: inProcessAgent });
    apiA = serveInProcess(appOver(a, { exportTarget: target }).callback());
    a.registry.addImage(REPO, 'v1', await buildImage({}));
    imageId = (await a.importer.importImage(SOURCE)).id;
  });
  afterEach(async () => {
    await apiA.close();
    await apiB.close();
    await a.close();
    await b.close();
    await ks.close();
    restore();
  });

  const remoteImages = async () => (await call(apiB.base, 'GET', '/v2/images', undefined, { 'x-auth-token': ks.issue('glance') })).json.images as GlanceImage[];

  it('creates the image remotely, streams the archive, verifies it, and the agent boots it with [glance] credentials', async () => {
    const local = await a.images.require(imageId);
    const res = await call(apiA.base, 'POST', `/v2/images/${imageId}/actions/export`, { visibility: 'private' });
    assert.equal(res.status, 200, JSON.stringify(res.json));
    const remote = res.json.image as GlanceImage;
    assert.equal(remote.status, 'active');
    assert.equal(remote.container_format, 'docker');
    assert.equal(remote.disk_format, 'raw');
    assert.equal(remote.visibility, 'private');
    assert.equal(remote.owner, 'p-service');
    assert.equal(remote.name, local.name);
    assert.equal(remote.checksum, local.checksum);
    assert.equal(remote.os_hash_value, local.os_hash_value);
    assert.equal(remote.docker_image, local.properties.docker_image);
    assert.equal(remote[SOURCE_DIGEST_PROPERTY], local.properties.docker_digest);
    assert.equal(remote[SOURCE_IMAGE_PROPERTY], imageId);
    assert.equal(remote.docker_image_id, local.properties.docker_image_id);

    // The agent's wiring: [glance] api_url empty, so Glance is found in the Keystone catalog.
    const config = loadConfig({
      env: { BERTH__GLANCE__API_URL: '', BERTH__GLANCE__AUTH_URL: ks.url, BERTH__GLANCE__USERNAME: 'glance', BERTH__GLANCE__PASSWORD: 'gl' },
    });
    const runtime = new FakeContainerRuntime();
    const cache = new ImageCache(createImageClient({ url: config.glance.api_url, keystone: config.glance, agent: inProcessAgent }), runtime);
    assert.equal(await cache.ensureImage(remote.id), local.properties.docker_image_id);
    assert.ok(await runtime.hasImage(local.properties.docker_image_id!));
    // Without credentials the private copy is not to be had.
    await assert.rejects(
      createImageClient({ url: apiB.base, agent: inProcessAgent }).getImage(remote.id),
      (e: BerthError) => e.status === 401 || e.code === 'IMAGE_SERVICE_UNAUTHORIZED',
    );
  });

  it('authenticates again once when Keystone revoked the token, for reads, downloads and uploads', async () => {
    const client = createImageClient({ url: apiB.base, keystone: glanceCreds, agent: inProcessAgent });
    await client.listImages();
    const issued = ks.counts.issued;
    ks.revokeAll();
    const remote = await exportImage({ images: a.images, blobs: a.blobs, log: silentLogger() }, client, imageId, { visibility: 'public', name: 'copied' });
    assert.equal(remote.status, 'active');
    assert.equal(remote.name, 'copied');
    // One new token for the client, one for B's own validating session.
    assert.equal(ks.counts.issued, issued + 2);
    ks.revokeAll();
    const runtime = new FakeContainerRuntime();
    await new ImageCache(client, runtime).ensureImage(remote.id);
    assert.equal(ks.counts.issued, issued + 4);
  });

  it('fails the call when Keystone refuses the [glance] user, and leaves nothing remote', async () => {
    const wrong = createImageClient({ url: apiB.base, keystone: { ...glanceCreds, password: 'nope' }, agent: inProcessAgent });
    await assert.rejects(exportImage({ images: a.images, blobs: a.blobs, log: silentLogger() }, wrong, imageId), (e: BerthError) => e.code === 'AUTH_FAILED');
    assert.equal((await remoteImages()).length, 0);
  });

  it('deletes the remote image when what it stored does not match', async () => {
    const lying: ImageService = {
      ...target,
      uploadImage: async (id, data, size) => ({ ...(await target.uploadImage(id, data, size)), checksum: '0'.repeat(32) }),
    };
    await assert.rejects(
      exportImage({ images: a.images, blobs: a.blobs, log: silentLogger() }, lying, imageId),
      (e: BerthError) => e.code === 'IMAGE_EXPORT_FAILED' && /checksum/.test(e.message),
    );
    assert.equal((await remoteImages()).length, 0);
  });

  it('refuses images that are not active docker images, and exports when none is configured', async () => {
    const queued = await a.images.create({ name: 'q', container_format: 'docker', disk_format: 'raw', owner: 'berth' });
    const res = await call(apiA.base, 'POST', `/v2/images/${queued.id}/actions/export`);
    assert.equal(res.status, 409);
    assert.equal(res.json.error.code, 'IMAGE_INVALID_STATE');
    assert.equal((await call(apiA.base, 'POST', `/v2/images/${imageId}/actions/export`, { visibility: 'secret' })).status, 400);
    const bare = appOver(a);
    const plain = serveInProcess(bare.callback());
    try {
      const none = await call(plain.base, 'POST', `/v2/images/${imageId}/actions/export`);
      assert.equal(none.status, 409);
      assert.equal(none.json.error.code, 'EXPORT_NOT_CONFIGURED');
    } finally {
      await plain.close();
    }
  });
});
