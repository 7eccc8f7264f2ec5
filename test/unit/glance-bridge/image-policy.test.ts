import assert from 'node:assert/strict';
import type { BerthError } from '../../../common/errors.js';
import { createImageClient } from '../../../glance-bridge/client/http.js';
import { buildImage } from '../../fakes/image-builder.js';
import { inProcessAgent, serveInProcess, type InProcessServer } from '../../support/in-process.js';
import { appOver, call } from './api-server.js';
import { createHarness, REPO, SOURCE, type Harness } from './harness.js';

const as = (project: string, admin = false): Record<string, string> => ({ 'x-project-id': project, ...(admin ? { 'x-roles': 'member,admin' } : {}) });
const ALICE = as('alice');
const BOB = as('bob');
const ADMIN = as('ops', true);
const PATCH = { 'content-type': 'application/openstack-images-v2.1-json-patch' };

/** Glance's default policy on the image API (policy/glance-policy.ts), and imports that never cross projects. */
describe('glance-bridge image policy', () => {
  let h: Harness;
  let server: InProcessServer;
  let base: string;

  beforeEach(async () => {
    h = await createHarness();
    const app = appOver(h);
    server = serveInProcess(app.callback());
    base = server.base;
  });
  afterEach(async () => {
    await server.close();
    await h.close();
  });

  const create = (headers: Record<string, string>, body: Record<string, unknown>) =>
    call(base, 'POST', '/v2/images', { container_format: 'docker', disk_format: 'raw', ...body }, headers);
  const created = async (headers: Record<string, string>, body: Record<string, unknown>) => {
    const res = await create(headers, body);
    assert.equal(res.status, 201, JSON.stringify(res.json));
    return res.json as { id: string; owner: string; visibility: string };
  };
  const patch = (headers: Record<string, string>, id: string, ops: unknown) =>
    call(base, 'PATCH', `/v2/images/${id}`, JSON.stringify(ops), { ...headers, ...PATCH });
  const importAs = (headers: Record<string, string>, body: Record<string, unknown> = {}) =>
    call(base, 'POST', '/v2/berth/import', { source: SOURCE, ...body }, headers);
  const settled = async (id: string) => {
    await h.importer.drain();
    return h.images.require(id);
  };

  describe('publicize_image is admin-only', () => {
    it('refuses visibility=public at creation to a non-admin (403), allows community, shared and private', async () => {
      const res = await create(ALICE, { name: 'p', visibility: 'public' });
      assert.equal(res.status, 403);
      assert.equal(res.json.error.code, 'IMAGE_FORBIDDEN');
      assert.equal((await call(base, 'GET', '/v2/images', undefined, BOB)).json.images.length, 0);
      for (const visibility of ['community', 'shared', 'private'])
        assert.equal((await created(ALICE, { name: visibility, visibility })).visibility, visibility);
      assert.equal((await created(ADMIN, { name: 'pub', visibility: 'public', owner: 'alice' })).visibility, 'public');
    });

    it('refuses a PATCH to visibility=public by the owner (403), lets an admin publicize', async () => {
      const image = await created(ALICE, { name: 'mine', visibility: 'private' });
      const res = await patch(ALICE, image.id, [{ op: 'replace', path: '/visibility', value: 'public' }]);
      assert.equal(res.status, 403);
      assert.equal(res.json.error.code, 'IMAGE_FORBIDDEN');
      assert.equal((await h.images.require(image.id)).visibility, 'private');
      assert.equal((await patch(ALICE, image.id, [{ op: 'replace', path: '/visibility', value: 'community' }])).json.visibility, 'community');
      assert.equal((await patch(ADMIN, image.id, [{ op: 'replace', path: '/visibility', value: 'public' }])).json.visibility, 'public');
      // The owner still edits its other attributes once an admin made the image public.
      assert.equal((await patch(ALICE, image.id, [{ op: 'replace', path: '/name', value: 'renamed' }])).status, 200);
    });

    it("refuses to export to the cloud's Glance as public for a non-admin, before anything is sent", async () => {
      const image = await created(ALICE, { name: 'mine' });
      const res = await call(base, 'POST', `/v2/images/${image.id}/actions/export`, { visibility: 'public' }, ALICE);
      assert.equal(res.status, 403);
      assert.equal(res.json.error.code, 'IMAGE_FORBIDDEN');
      // Any other visibility goes on to the export itself (none is configured here).
      assert.equal(
        (await call(base, 'POST', `/v2/images/${image.id}/actions/export`, { visibility: 'community' }, ALICE)).json.error.code,
        'EXPORT_NOT_CONFIGURED',
      );
      assert.equal(
        (await call(base, 'POST', `/v2/images/${image.id}/actions/export`, { visibility: 'public' }, ADMIN)).json.error.code,
        'EXPORT_NOT_CONFIGURED',
      );
    });
  });

  describe('owner', () => {
    it('refuses a PATCH of owner by the owner (403): it can neither give its image away nor disown it', async () => {
      const image = await created(ALICE, { name: 'mine' });
      for (const ops of [[{ op: 'replace', path: '/owner', value: 'bob' }], [{ op: 'replace', path: '/owner', value: 'berth' }]]) {
        const res = await patch(ALICE, image.id, ops);
        assert.equal(res.status, 403);
        assert.equal(res.json.error.code, 'IMAGE_FORBIDDEN');
      }
      assert.equal((await h.images.require(image.id)).owner, 'alice');
      assert.equal((await call(base, 'GET', '/v2/images', undefined, BOB)).json.images.length, 0);
      assert.equal((await patch(ADMIN, image.id, [{ op: 'replace', path: '/owner', value: 'bob' }])).json.owner, 'bob');
    });

    it('refuses creating an image owned by another project, the default project included', async () => {
      for (const owner of ['bob', 'berth']) assert.equal((await create(ALICE, { name: 'x', owner })).status, 403);
      assert.equal((await created(ALICE, { name: 'x', owner: 'alice' })).owner, 'alice');
    });
  });

  describe('properties the nodes trust', () => {
    const RESERVED = {
      docker_image: 'registry.test:5000/team/app:v1',
      berth_manifest_digest: `sha256:${'a'.repeat(64)}`,
      berth_source_image: 'x',
      berth_anything: 'y',
    };

    it('refuses docker_image and berth_* properties at creation by a non-admin (403)', async () => {
      for (const [key, value] of Object.entries(RESERVED)) {
        const res = await create(ALICE, { name: 'forged', [key]: value });
        assert.equal(res.status, 403, key);
        assert.equal(res.json.error.code, 'ATTRIBUTE_FORBIDDEN', key);
        assert.equal(res.json.error.details.attribute, key);
      }
      assert.equal((await call(base, 'GET', '/v2/images', undefined, ALICE)).json.images.length, 0);
      const byAdmin = await created(ADMIN, { name: 'copied', ...RESERVED });
      assert.equal((byAdmin as Record<string, unknown>).docker_image, RESERVED.docker_image);
    });

    it('refuses adding, replacing or removing them by PATCH for a non-admin (403), keeps them through other edits', async () => {
      h.registry.addImage(REPO, 'v1', await buildImage());
      const imported = await importAs(ALICE);
      const image = await settled(imported.json.image.id as string);
      assert.equal(image.owner, 'alice');
      for (const ops of [
        [{ op: 'add', path: '/berth_manifest_digest', value: RESERVED.berth_manifest_digest }],
        [{ op: 'replace', path: '/docker_image', value: 'registry.test:5000/other/app:v1' }],
        [{ op: 'remove', path: '/docker_image' }],
        [{ op: 'add', path: '/berth_source_digest', value: 'x' }],
      ]) {
        const res = await patch(ALICE, image.id, ops);
        assert.equal(res.status, 403, JSON.stringify(ops));
        assert.equal(res.json.error.code, 'ATTRIBUTE_FORBIDDEN', JSON.stringify(ops));
      }
      const after = await h.images.require(image.id);
      assert.deepEqual(after.properties, image.properties);
      const renamed = await patch(ALICE, image.id, [
        { op: 'replace', path: '/name', value: 'renamed' },
        { op: 'add', path: '/os_distro', value: 'busybox' },
      ]);
      assert.equal(renamed.status, 200);
      assert.equal(renamed.json.docker_image, image.properties.docker_image);
      assert.equal(renamed.json.berth_manifest_digest, image.properties.berth_manifest_digest);
    });
  });

  describe('POST /v2/berth/import', () => {
    it("imports into the caller's project, shared by default; public only for an admin", async () => {
      h.registry.addImage(REPO, 'v1', await buildImage());
      const refused = await importAs(ALICE, { visibility: 'public' });
      assert.equal(refused.status, 403);
      assert.equal(refused.json.error.code, 'IMAGE_FORBIDDEN');
      assert.equal((await importAs(ALICE, { visibility: 'everyone' })).status, 400);
      const mine = await importAs(ALICE);
      assert.equal(mine.status, 202);
      assert.equal(mine.json.image.owner, 'alice');
      assert.equal(mine.json.image.visibility, 'shared');
      assert.equal((await settled(mine.json.image.id as string)).status, 'active');
      // Nothing went to the default project, and other projects see nothing.
      assert.equal((await h.images.usage('berth')).count, 0);
      assert.equal((await call(base, 'GET', '/v2/images', undefined, BOB)).json.images.length, 0);
      const curated = await importAs(ADMIN);
      assert.equal(curated.json.image.owner, 'ops');
      assert.equal(curated.json.image.visibility, 'public');
    });

    it("never returns another project's image of the same content: each project gets its own, the blobs are shared", async () => {
      h.registry.addImage(REPO, 'v1', await buildImage());
      const alice = await importAs(ALICE, { visibility: 'private' });
      const alices = await settled(alice.json.image.id as string);
      assert.equal(alices.status, 'active');
      const fetched = h.registry.blobFetches.length;

      const bob = await importAs(BOB);
      assert.equal(bob.status, 202);
      const bobs = bob.json.image as { id: string; owner: string };
      assert.notEqual(bobs.id, alices.id);
      assert.equal(bobs.owner, 'bob');
      assert.equal((await settled(bobs.id)).status, 'active');
      // Same blobs, stored once; Bob's source had to serve them again, as he may not read Alice's
      // image (importer.test.ts); Alice's image stays hers and hidden.
      assert.ok(h.registry.blobFetches.length > fetched);
      assert.deepEqual(await h.images.blobsOf(bobs.id), await h.images.blobsOf(alices.id));
      assert.equal((await call(base, 'GET', `/v2/images/${alices.id}`, undefined, BOB)).status, 404);
      assert.deepEqual(
        ((await call(base, 'GET', '/v2/images', undefined, BOB)).json.images as { id: string }[]).map((i) => i.id),
        [bobs.id],
      );

      // A project importing what it already holds gets its own image back.
      assert.equal((await importAs(ALICE)).json.image.id, alices.id);
      assert.equal((await importAs(BOB)).json.image.id, bobs.id);
      // Deleting one project's image leaves the other's whole.
      assert.equal((await call(base, 'DELETE', `/v2/images/${bobs.id}`, undefined, BOB)).status, 204);
      assert.equal((await call(base, 'GET', `/v2/images/${alices.id}/file`, undefined, ALICE)).status, 200);
    });

    it("makes web-download into a project's image prove blobs only another project's private image holds", async () => {
      const built = await buildImage();
      h.registry.addImage(REPO, 'v1', built);
      const alices = await settled((await importAs(ALICE, { visibility: 'private' })).json.image.id as string);
      assert.equal(alices.status, 'active');
      // Bob's registry names Alice's blobs without having their bytes.
      h.registry.addManifest({ registry: 'evil.test:5000', repository: 'bob/app' }, 'v1', built.manifest, built.mediaType);
      h.registry.blobs.clear();
      const target = await created(BOB, { name: 'target' });
      const res = await call(
        base,
        'POST',
        `/v2/images/${target.id}/import`,
        { method: { name: 'web-download', uri: 'docker://evil.test:5000/bob/app:v1' } },
        BOB,
      );
      assert.equal(res.status, 202);
      assert.equal((await settled(target.id)).status, 'killed');
      assert.equal((await call(base, 'GET', `/v2/images/${target.id}/file`, undefined, BOB)).status, 204);
    });

    it("lets the operator's image client act as admin of a noauth bridge by its roles option", async () => {
      h.registry.addImage(REPO, 'v1', await buildImage());
      const served = serveInProcess(appOver(h).callback());
      try {
        const plain = await createImageClient({ url: served.base, pollIntervalMs: 10, agent: inProcessAgent }).importImage(SOURCE);
        assert.deepEqual([plain.owner, plain.visibility], ['berth', 'shared']);
        const operator = createImageClient({ url: served.base, roles: ['admin'], pollIntervalMs: 10, agent: inProcessAgent });
        const image = await operator.createImage({ name: 'pub', container_format: 'docker', disk_format: 'raw', visibility: 'public' });
        assert.equal(image.visibility, 'public');
        await assert.rejects(
          createImageClient({ url: served.base, agent: inProcessAgent }).createImage({
            name: 'pub',
            container_format: 'docker',
            disk_format: 'raw',
            visibility: 'public',
          }),
          (e: BerthError) => e.code === 'IMAGE_FORBIDDEN',
        );
      } finally {
        await served.close();
      }
    });

    it('keeps concurrent imports of one content by two projects apart', async () => {
      h.registry.addImage(REPO, 'v1', await buildImage());
      const [a, b] = await Promise.all([importAs(ALICE), importAs(BOB)]);
      assert.deepEqual([a.json.image.owner, b.json.image.owner], ['alice', 'bob']);
      assert.notEqual(a.json.image.id, b.json.image.id);
      assert.equal((await settled(a.json.image.id as string)).status, 'active');
      assert.equal((await settled(b.json.image.id as string)).status, 'active');
    });
  });
});
