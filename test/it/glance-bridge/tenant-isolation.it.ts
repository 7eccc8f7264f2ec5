import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../../common/log.js';
import { loadConfig } from '../../../conf/index.js';
import { startImageService, type ImageServiceHandle } from '../../../glance-bridge/main.js';
import { fakeKeystone } from '../../fakes/keystone.js';
import { BUSYBOX, CountingRegistryClient, REGISTRY, realRegistryClient } from './helpers.js';

const USERS = [
  { name: 'glance', password: 'gl', project: 'service', roles: ['admin', 'service'] },
  { name: 'alice', password: 'a', project: 'demo', roles: ['member'] },
  { name: 'bob', password: 'b', project: 'other', roles: ['member', 'reader'] },
  { name: 'ops', password: 'o', project: 'ops', roles: ['admin'] },
];

interface Image {
  id: string;
  owner: string;
  visibility: string;
  status: string;
  berth_manifest_digest?: string;
  [k: string]: unknown;
}

/**
 * The real image service (main.ts: SQLite on a temp directory, the blob store, the registry
 * endpoint) with auth_strategy = keystone, importing from the real registry: what one project
 * does with an image never reaches another project, over HTTP as clients see it.
 */
describe('glance-bridge keeps projects apart (real service, keystone mode, real registry)', function () {
  this.timeout(120_000);
  let ks: Awaited<ReturnType<typeof fakeKeystone>>;
  let service: ImageServiceHandle;
  let registry: CountingRegistryClient;
  let dir: string;

  before(async () => {
    ks = await fakeKeystone({ users: USERS });
    dir = mkdtempSync(join(tmpdir(), 'berth-images-it-'));
    const user = { auth_url: ks.url, username: 'glance', password: 'gl', project_name: 'service' };
    const config = loadConfig({
      env: {},
      overrides: {
        DEFAULT: { state_path: dir },
        image_store: { listen: '127.0.0.1:0', auth_strategy: 'keystone' },
        registry: { insecure_hosts: [REGISTRY] },
        keystone_authtoken: user,
      },
    });
    registry = new CountingRegistryClient(realRegistryClient());
    service = await startImageService(config, { log: silentLogger(), registry });
  });
  after(async () => {
    await service?.close();
    await ks?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const api = async (user: string | null, method: string, path: string, body?: unknown, type = 'application/json') => {
    const res = await fetch(`${service.url}${path}`, {
      method,
      headers: { ...(user ? { 'x-auth-token': ks.issue(user) } : {}), ...(body !== undefined ? { 'content-type': type } : {}) },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, json: (text ? JSON.parse(text) : undefined) as any };
  };
  const pull = async (user: string | null, path: string) => {
    const res = await fetch(`${service.registryEndpoint!.url}${path}`, { headers: user ? { authorization: `Bearer ${ks.issue(user)}` } : {} });
    await res.arrayBuffer();
    return res.status === 200 ? res.headers.get('docker-content-digest') : res.status;
  };
  const importAs = async (user: string, body: Record<string, unknown> = {}): Promise<Image> => {
    const res = await api(user, 'POST', '/v2/berth/import', { source: BUSYBOX, ...body });
    assert.equal(res.status, 202, JSON.stringify(res.json));
    const id = res.json.image.id as string;
    for (let i = 0; i < 1200; i++) {
      const image = (await api(user, 'GET', `/v2/images/${id}`)).json as Image;
      if (image.status !== 'importing') return image;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`import ${id} did not finish`);
  };

  let alices: Image;
  let bobs: Image;

  it("gives each project its own record of the same import: another project's private image is neither returned nor readable", async () => {
    alices = await importAs('alice', { visibility: 'private' });
    assert.deepEqual([alices.status, alices.owner, alices.visibility], ['active', 'p-demo', 'private']);
    const fetched = registry.blobFetches;
    bobs = await importAs('bob');
    assert.deepEqual([bobs.status, bobs.owner, bobs.visibility], ['active', 'p-other', 'shared']);
    assert.notEqual(bobs.id, alices.id);
    // Bob may not read Alice's image, so his source had to serve the blobs again.
    assert.ok(registry.blobFetches > fetched);
    assert.equal((await api('bob', 'GET', `/v2/images/${alices.id}`)).status, 404);
    assert.equal((await api('bob', 'GET', `/v2/images/${alices.id}/file`)).status, 404);
    assert.deepEqual(
      ((await api('bob', 'GET', '/v2/images')).json.images as Image[]).map((i) => i.id),
      [bobs.id],
    );
    // Re-importing returns the project's own image.
    assert.equal((await importAs('alice')).id, alices.id);
    assert.equal((await api('ops', 'GET', '/v2/images?owner=berth')).json.images.length, 0);
  });

  it("applies Glance's policy: no public images, owner changes or reserved properties from a project", async () => {
    const forbidden = async (res: { status: number; json: any }, code: string) => {
      assert.equal(res.status, 403, JSON.stringify(res.json));
      assert.equal(res.json.error.code, code);
    };
    const patch = (user: string, ops: unknown) =>
      api(user, 'PATCH', `/v2/images/${alices.id}`, JSON.stringify(ops), 'application/openstack-images-v2.1-json-patch');
    await forbidden(
      await api('alice', 'POST', '/v2/images', { name: 'p', visibility: 'public', container_format: 'docker', disk_format: 'raw' }),
      'IMAGE_FORBIDDEN',
    );
    await forbidden(
      await api('alice', 'POST', '/v2/images', { name: 'p', container_format: 'docker', disk_format: 'raw', docker_image: `${REGISTRY}/berth/busybox:latest` }),
      'ATTRIBUTE_FORBIDDEN',
    );
    await forbidden(await api('alice', 'POST', '/v2/berth/import', { source: BUSYBOX, visibility: 'public' }), 'IMAGE_FORBIDDEN');
    await forbidden(await patch('alice', [{ op: 'replace', path: '/visibility', value: 'public' }]), 'IMAGE_FORBIDDEN');
    await forbidden(await patch('alice', [{ op: 'replace', path: '/owner', value: 'p-other' }]), 'IMAGE_FORBIDDEN');
    await forbidden(await patch('alice', [{ op: 'replace', path: '/berth_manifest_digest', value: bobs.berth_manifest_digest }]), 'ATTRIBUTE_FORBIDDEN');
    await forbidden(await api('alice', 'POST', `/v2/images/${alices.id}/actions/export`, { visibility: 'public' }), 'IMAGE_FORBIDDEN');
    const still = (await api('alice', 'GET', `/v2/images/${alices.id}`)).json as Image;
    assert.deepEqual([still.owner, still.visibility, still.berth_manifest_digest], ['p-demo', 'private', alices.berth_manifest_digest]);
    assert.equal((await patch('alice', [{ op: 'replace', path: '/visibility', value: 'community' }])).json.visibility, 'community');
    assert.equal((await patch('alice', [{ op: 'replace', path: '/visibility', value: 'private' }])).status, 200);
  });

  it('serves a private import on the registry endpoint to its project only, by id and by name', async () => {
    const byId = `/v2/berth/${alices.id}/manifests/${alices.berth_manifest_digest}`;
    assert.equal(await pull(null, byId), 404);
    assert.equal(await pull('bob', byId), 404);
    assert.equal(await pull('alice', byId), alices.berth_manifest_digest);
    const byName = '/v2/berth/busybox/manifests/latest';
    assert.equal(await pull(null, byName), 404);
    assert.equal(await pull('alice', byName), alices.berth_manifest_digest);
    // An admin's import is public: what anonymous pulls by name get from now on.
    const curated = await importAs('ops');
    assert.equal(curated.visibility, 'public');
    assert.equal(await pull(null, byName), curated.berth_manifest_digest);
    assert.equal(await pull(null, byId), 404);
  });
});
