import assert from 'node:assert/strict';
import { appOver, call } from './api-server.js';
import { inProcessFetch, serveInProcess, type InProcessServer } from '../../support/in-process.js';
import { createHarness, type Harness } from './harness.js';

const as = (project: string, admin = false): Record<string, string> => ({ 'x-project-id': project, ...(admin ? { 'x-roles': 'member,admin' } : {}) });
const ALICE = as('alice');
const BOB = as('bob');
const CAROL = as('carol');
const ADMIN = as('ops', true);

describe('glance-bridge visibility, members and project quotas', () => {
  let h: Harness;
  let server: InProcessServer;
  let base: string;

  async function start(quotas = { maxImages: 0, maxBytes: 0 }): Promise<void> {
    h = await createHarness();
    const app = appOver(h, { quotas });
    server = serveInProcess(app.callback());
    base = server.base;
  }
  afterEach(async () => {
    await server.close();
    await h.close();
  });

  const create = async (headers: Record<string, string>, body: Record<string, unknown>) => {
    const res = await call(base, 'POST', '/v2/images', { container_format: 'bare', disk_format: 'raw', ...body }, headers);
    assert.equal(res.status, 201, JSON.stringify(res.json));
    return res.json.id as string;
  };
  const listed = async (headers: Record<string, string>, q = '') =>
    ((await call(base, 'GET', `/v2/images${q}`, undefined, headers)).json.images as { name: string }[]).map((i) => i.name).sort();
  const status = async (headers: Record<string, string>, method: string, path: string, body?: unknown) =>
    (await call(base, method, path, body, headers)).status;

  describe('visibility', () => {
    let ids: Record<string, string>;
    beforeEach(async () => {
      await start();
      ids = {};
      // Only an admin publicizes (image-policy.test.ts), for Alice here.
      for (const visibility of ['public', 'private', 'shared', 'community']) {
        ids[visibility] = await create(visibility === 'public' ? ADMIN : ALICE, { name: visibility, visibility, owner: 'alice' });
      }
    });

    it('lets the owner list and read all its images (community ones too)', async () => {
      assert.deepEqual(await listed(ALICE), ['community', 'private', 'public', 'shared']);
      for (const id of Object.values(ids)) assert.equal(await status(ALICE, 'GET', `/v2/images/${id}`), 200);
    });

    it('hides private and unshared images from other projects: not listed, 404 by id', async () => {
      assert.deepEqual(await listed(BOB), ['public']);
      assert.equal(await status(BOB, 'GET', `/v2/images/${ids.private}`), 404);
      assert.equal(await status(BOB, 'GET', `/v2/images/${ids.shared}`), 404);
      assert.equal(await status(BOB, 'GET', `/v2/images/${ids.private}/file`), 404);
      assert.equal(await status(BOB, 'DELETE', `/v2/images/${ids.private}`), 404);
    });

    it('lists community images only when asked, but reads them by id', async () => {
      assert.deepEqual(await listed(BOB, '?visibility=community'), ['community']);
      assert.deepEqual(await listed(BOB, '?visibility=all'), ['community', 'public']);
      assert.equal(await status(BOB, 'GET', `/v2/images/${ids.community}`), 200);
    });

    it('lets other projects read but not change public and community images (403)', async () => {
      assert.equal(await status(BOB, 'GET', `/v2/images/${ids.public}`), 200);
      assert.equal(await status(BOB, 'DELETE', `/v2/images/${ids.public}`), 403);
      assert.equal(await status(BOB, 'PUT', `/v2/images/${ids.community}/tags/mine`), 403);
      const patched = await call(base, 'PATCH', `/v2/images/${ids.public}`, JSON.stringify([{ op: 'replace', path: '/name', value: 'x' }]), {
        ...BOB,
        'content-type': 'application/openstack-images-v2.1-json-patch',
      });
      assert.equal(patched.status, 403);
      assert.equal(patched.json.error.code, 'IMAGE_FORBIDDEN');
    });

    it('lets an admin list, read and change every image, and create images for other projects', async () => {
      assert.deepEqual(await listed(ADMIN), ['private', 'public', 'shared']);
      assert.deepEqual(await listed(ADMIN, '?visibility=all'), ['community', 'private', 'public', 'shared']);
      assert.equal(await status(ADMIN, 'PUT', `/v2/images/${ids.private}/tags/checked`), 204);
      assert.equal(await status(BOB, 'POST', '/v2/images', { name: 'x', owner: 'alice' }), 403);
      assert.equal(await status(ADMIN, 'POST', '/v2/images', { name: 'x', owner: 'alice' }), 201);
    });

    it('takes the default project when no X-Project-Id is sent', async () => {
      const id = await create({}, { name: 'mine' });
      assert.equal((await call(base, 'GET', `/v2/images/${id}`)).json.owner, 'berth');
      assert.equal(await status(ALICE, 'GET', `/v2/images/${id}`), 404);
    });
  });

  describe('members', () => {
    let shared: string;
    const members = (id: string) => `/v2/images/${id}/members`;
    beforeEach(async () => {
      await start();
      shared = await create(ALICE, { name: 'shared', visibility: 'shared' });
    });

    it('lets only the owner add members, only to shared images, each once', async () => {
      const added = await call(base, 'POST', members(shared), { member: 'bob' }, ALICE);
      assert.equal(added.status, 200);
      assert.equal(added.json.member_id, 'bob');
      assert.equal(added.json.status, 'pending');
      assert.equal(added.json.schema, '/v2/schemas/member');
      assert.equal(await status(ALICE, 'POST', members(shared), { member: 'bob' }), 409);
      assert.equal(await status(BOB, 'POST', members(shared), { member: 'carol' }), 403);
      assert.equal(await status(ALICE, 'POST', members(shared), { nobody: 1 }), 400);
      const priv = await create(ALICE, { name: 'p', visibility: 'private' });
      assert.equal(await status(ALICE, 'POST', members(priv), { member: 'bob' }), 403);
    });

    it('lists a shared image for a member only once it accepted; reads it by id meanwhile', async () => {
      await call(base, 'POST', members(shared), { member: 'bob' }, ALICE);
      assert.deepEqual(await listed(BOB), []);
      assert.deepEqual(await listed(BOB, '?member_status=pending'), ['shared']);
      assert.equal(await status(BOB, 'GET', `/v2/images/${shared}`), 200);
      assert.equal(await status(CAROL, 'GET', `/v2/images/${shared}`), 404);
      const accepted = await call(base, 'PUT', `${members(shared)}/bob`, { status: 'accepted' }, BOB);
      assert.equal(accepted.json.status, 'accepted');
      assert.deepEqual(await listed(BOB), ['shared']);
      await call(base, 'PUT', `${members(shared)}/bob`, { status: 'rejected' }, BOB);
      assert.deepEqual(await listed(BOB), []);
      assert.deepEqual(await listed(BOB, '?member_status=all'), ['shared']);
      assert.equal(await status(BOB, 'GET', '/v2/images?member_status=maybe'), 400);
    });

    it('lets only the member change its status, to a known status; members cannot change the image', async () => {
      await call(base, 'POST', members(shared), { member: 'bob' }, ALICE);
      assert.equal(await status(ALICE, 'PUT', `${members(shared)}/bob`, { status: 'accepted' }), 403);
      assert.equal(await status(BOB, 'PUT', `${members(shared)}/bob`, { status: 'maybe' }), 400);
      assert.equal(await status(BOB, 'PUT', `${members(shared)}/bob`, { status: 'accepted' }), 200);
      assert.equal(await status(BOB, 'DELETE', `/v2/images/${shared}`), 403);
      assert.equal(await status(BOB, 'DELETE', `${members(shared)}/bob`), 403);
    });

    it('shows the owner every member and a member only itself', async () => {
      await call(base, 'POST', members(shared), { member: 'bob' }, ALICE);
      await call(base, 'POST', members(shared), { member: 'carol' }, ALICE);
      const ofOwner = await call(base, 'GET', members(shared), undefined, ALICE);
      assert.deepEqual(
        (ofOwner.json.members as { member_id: string }[]).map((m) => m.member_id),
        ['bob', 'carol'],
      );
      assert.equal(ofOwner.json.schema, '/v2/schemas/members');
      const ofBob = await call(base, 'GET', members(shared), undefined, BOB);
      assert.deepEqual(
        (ofBob.json.members as { member_id: string }[]).map((m) => m.member_id),
        ['bob'],
      );
      assert.equal(await status(BOB, 'GET', `${members(shared)}/carol`), 404);
      assert.equal(await status(BOB, 'GET', `${members(shared)}/bob`), 200);
    });

    it('lets the owner remove a member, who then no longer sees the image', async () => {
      await call(base, 'POST', members(shared), { member: 'bob' }, ALICE);
      assert.equal(await status(ALICE, 'DELETE', `${members(shared)}/bob`), 204);
      assert.equal(await status(ALICE, 'DELETE', `${members(shared)}/bob`), 404);
      assert.equal(await status(BOB, 'GET', `/v2/images/${shared}`), 404);
    });
  });

  describe('quotas', () => {
    it("refuses an image over max_images_per_project with 413 in Glance's words, per project", async () => {
      await start({ maxImages: 2, maxBytes: 0 });
      await create(ALICE, { name: 'one' });
      await create(ALICE, { name: 'two' });
      const third = await call(base, 'POST', '/v2/images', { name: 'three' }, ALICE);
      assert.equal(third.status, 413);
      assert.equal(third.json.error.code, 'QUOTA_EXCEEDED');
      assert.match(third.json.error.message, /image_count_total is over limit of 2 due to current usage 2 and delta 1/);
      await create(BOB, { name: 'bob-one' });
    });

    it('refuses uploads past max_bytes_per_project: by Content-Length up front, or while streaming', async () => {
      await start({ maxImages: 0, maxBytes: 1000 });
      const first = await create(ALICE, { name: 'first' });
      assert.equal(await status(ALICE, 'PUT', `/v2/images/${first}/file`, Buffer.alloc(600)), 204);
      const second = await create(ALICE, { name: 'second' });
      const refused = await call(base, 'PUT', `/v2/images/${second}/file`, Buffer.alloc(600), ALICE);
      assert.equal(refused.status, 413);
      assert.match(refused.json.error.message, /exceeds the quota: The size of the data 600 will exceed the limit\. 400 bytes remaining\./);
      assert.equal((await call(base, 'GET', `/v2/images/${second}`, undefined, ALICE)).json.status, 'queued');
      // Chunked, so no Content-Length: the stream is cut at the quota.
      const res = await inProcessFetch(`${base}/v2/images/${second}/file`, {
        method: 'PUT',
        headers: { ...ALICE, 'content-type': 'application/octet-stream' },
        duplex: 'half',
        body: new ReadableStream({
          start(c) {
            c.enqueue(new Uint8Array(300));
            c.enqueue(new Uint8Array(300));
            c.close();
          },
        }),
      } as RequestInit);
      assert.equal(res.status, 413);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'QUOTA_EXCEEDED');
      assert.equal(await status(BOB, 'PUT', `/v2/images/${await create(BOB, { name: 'b' })}/file`, Buffer.alloc(900)), 204);
    });
  });
});
