import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { BerthError } from '../../../common/errors.js';
import { silentLogger } from '../../../common/log.js';
import { createApp } from '../../../glance-bridge/app.js';
import { JSON_PATCH_TYPE } from '../../../glance-bridge/api/patch.js';
import { buildImage, type BuiltImage } from '../../fakes/image-builder.js';
import { serveInProcess, type InProcessServer } from '../../support/in-process.js';
import { call } from './api-server.js';
import { createHarness, REPO, type Harness } from './harness.js';

const ALICE = { 'x-project-id': 'alice' };
const BOB = { 'x-project-id': 'bob' };
const CAROL = { 'x-project-id': 'carol' };
const source = (tag: string) => `docker://registry.test:5000/team/app:${tag}`;
const props = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, 'v']));

describe('glance-bridge per-image and per-service limits', () => {
  let h: Harness;
  let server: InProcessServer;
  let base: string;
  let go = (): void => undefined;

  async function start(opts: { propertyQuota?: number; maxConcurrentImports?: number; maxConcurrentImportsPerProject?: number } = {}): Promise<void> {
    const { propertyQuota, ...importLimits } = opts;
    h = await createHarness(importLimits);
    const app = createApp({
      images: h.images,
      blobs: h.blobs,
      importer: h.importer,
      uploader: h.uploader,
      log: silentLogger(),
      maxBodyBytes: 1024 * 1024,
      defaultProject: 'berth',
      ...(propertyQuota !== undefined ? { propertyQuota } : {}),
    });
    server = serveInProcess(app.callback());
    base = server.base;
  }
  afterEach(async () => {
    go();
    await server.close();
    await h.close();
  });

  const patch = (id: string, ops: unknown[], headers = ALICE) =>
    call(base, 'PATCH', `/v2/images/${id}`, JSON.stringify(ops), { ...headers, 'content-type': JSON_PATCH_TYPE });

  describe('image properties (image_property_quota, 255-character keys and values)', () => {
    it("refuses a create with more than 128 custom properties by default, with 413 in Glance's words", async () => {
      await start();
      const over = await call(base, 'POST', '/v2/images', { name: 'many', ...props(129) }, ALICE);
      assert.equal(over.status, 413);
      assert.equal(over.json.error.code, 'QUOTA_EXCEEDED');
      assert.match(over.json.error.message, /number of allowed image properties\. Attempted: 129, Maximum: 128/);
      assert.equal((await call(base, 'POST', '/v2/images', { name: 'full', ...props(128) }, ALICE)).status, 201);
    });

    it('refuses a patch that adds properties past the quota, but not one that removes or replaces', async () => {
      await start({ propertyQuota: 3 });
      const created = await call(base, 'POST', '/v2/images', { name: 'p', ...props(3) }, ALICE);
      assert.equal(created.status, 201);
      const id = created.json.id as string;
      const add = await patch(id, [{ op: 'add', path: '/p3', value: 'v' }]);
      assert.equal(add.status, 413);
      assert.match(add.json.error.message, /Attempted: 4, Maximum: 3/);
      assert.equal((await patch(id, [{ op: 'replace', path: '/p0', value: 'w' }])).status, 200);
      assert.equal(
        (
          await patch(id, [
            { op: 'remove', path: '/p0' },
            { op: 'add', path: '/p3', value: 'v' },
          ])
        ).status,
        200,
      );
      assert.equal((await call(base, 'POST', '/v2/images', { name: 'q', ...props(4) }, ALICE)).status, 413);
    });

    it('refuses keys and values over 255 characters, on create and on patch', async () => {
      await start();
      const longKey = await call(base, 'POST', '/v2/images', { name: 'k', ['k'.repeat(256)]: 'v' }, ALICE);
      assert.equal(longKey.status, 400);
      const longValue = await call(base, 'POST', '/v2/images', { name: 'v', note: 'x'.repeat(256) }, ALICE);
      assert.equal(longValue.status, 400);
      assert.match(longValue.json.error.message, /property note has a value of 256 characters; at most 255/);
      const ok = await call(base, 'POST', '/v2/images', { name: 'ok', ['k'.repeat(255)]: 'x'.repeat(255) }, ALICE);
      assert.equal(ok.status, 201);
      assert.equal((await patch(ok.json.id as string, [{ op: 'add', path: '/note', value: 'x'.repeat(256) }])).status, 400);
    });

    it('refuses a create with more than 128 tags (image_tag_quota)', async () => {
      await start();
      const tags = Array.from({ length: 129 }, (_, i) => `t${i}`);
      assert.equal((await call(base, 'POST', '/v2/images', { name: 't', tags }, ALICE)).status, 413);
    });
  });

  describe('concurrent imports', () => {
    let images: Record<string, BuiltImage>;
    beforeEach(async () => {
      images = {};
      for (const tag of ['a1', 'a2', 'b1', 'c1']) images[tag] = await buildImage({ layers: [{ [`${tag}.bin`]: randomBytes(256) }] });
    });
    const hold = () => {
      for (const [tag, image] of Object.entries(images)) h.registry.addImage(REPO, tag, image);
      h.registry.gate = new Promise<void>((resolve) => {
        go = resolve;
      });
    };
    const isLimit = (option: string) => (e: unknown) =>
      e instanceof BerthError && e.status === 413 && e.code === 'QUOTA_EXCEEDED' && e.message.includes(`[image_store] ${option}`);

    it("refuses a project's import past max_concurrent_imports_per_project, and anyone's past max_concurrent_imports", async () => {
      await start({ maxConcurrentImports: 2, maxConcurrentImportsPerProject: 1 });
      hold();
      const first = await h.importer.startImport(source('a1'), { owner: 'alice' });
      await assert.rejects(h.importer.startImport(source('a2'), { owner: 'alice' }), isLimit('max_concurrent_imports_per_project'));
      // The same content again is answered by the running import: no new slot needed.
      assert.equal((await h.importer.startImport(source('a1'), { owner: 'alice' })).image.id, first.image.id);
      const bob = await h.importer.startImport(source('b1'), { owner: 'bob' });
      await assert.rejects(h.importer.startImport(source('c1'), { owner: 'carol' }), isLimit('max_concurrent_imports'));
      go();
      assert.equal((await first.done)?.status, 'active');
      assert.equal((await bob.done)?.status, 'active');
      const again = await h.importer.startImport(source('a2'), { owner: 'alice' });
      assert.equal((await again.done)?.status, 'active', 'a finished import frees its slot');
    });

    it('answers 413 over HTTP naming the limit, counted per calling project', async () => {
      await start({ maxConcurrentImportsPerProject: 1 });
      hold();
      assert.equal((await call(base, 'POST', '/v2/berth/import', { source: source('a1') }, ALICE)).status, 202);
      const refused = await call(base, 'POST', '/v2/berth/import', { source: source('a2') }, ALICE);
      assert.equal(refused.status, 413);
      assert.match(refused.json.error.message, /image_count_uploading is over limit of 1 .*max_concurrent_imports_per_project/);
      assert.equal((await call(base, 'POST', '/v2/berth/import', { source: source('b1') }, BOB)).status, 202);
      // web-download into a queued image counts against its owner too.
      const queued = await call(base, 'POST', '/v2/images', { name: 'wd', container_format: 'docker', disk_format: 'raw' }, CAROL);
      assert.equal(
        (await call(base, 'POST', `/v2/images/${queued.json.id as string}/import`, { method: { name: 'web-download', uri: source('c1') } }, CAROL)).status,
        202,
      );
      const queued2 = await call(base, 'POST', '/v2/images', { name: 'wd2', container_format: 'docker', disk_format: 'raw' }, CAROL);
      assert.equal(
        (await call(base, 'POST', `/v2/images/${queued2.json.id as string}/import`, { method: { name: 'web-download', uri: source('a2') } }, CAROL)).status,
        413,
      );
      assert.equal(
        (await call(base, 'GET', `/v2/images/${queued2.json.id as string}`, undefined, CAROL)).json.status,
        'queued',
        'a refused web-download leaves the image queued',
      );
    });
  });
});
