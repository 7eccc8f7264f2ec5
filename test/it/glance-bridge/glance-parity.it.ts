import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { shape, startParityPair, type Answer, type ParityPair, type Side } from './parity.js';

/**
 * The same requests to the real Glance 25 (Zed) of the test cloud (tools/dev/cloud.sh) and to the
 * image store, with one Keystone token: the statuses must be equal, and where both answer JSON,
 * the bodies must have the same shape (keys and value types). Glance's error bodies are webob's
 * HTML pages, the store's are its JSON error body: for errors only the status is compared.
 */
describe('glance-bridge answers as the real Glance Zed of the test cloud', function () {
  this.timeout(120_000);
  const run = randomBytes(4).toString('hex');
  const tag = `berth-parity-${run}`;
  let pair: ParityPair;
  const created: Record<Side, string[]> = { glance: [], berth: [] };
  const send = (side: Side, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> =>
    pair.send(side, method, path, body, headers);

  before(async () => {
    pair = await startParityPair();
  });
  after(async () => {
    if (!pair) return;
    for (const side of ['glance', 'berth'] as const) {
      for (const id of created[side]) {
        await send(side, 'PATCH', `/v2/images/${id}`, [{ op: 'replace', path: '/protected', value: false }], {
          'content-type': 'application/openstack-images-v2.1-json-patch',
        }).catch(() => undefined);
        await send(side, 'DELETE', `/v2/images/${id}`).catch(() => undefined);
      }
    }
    await pair.close();
  });

  /** One request to both (`path` may differ per side: image ids do); the statuses must match. */
  async function both(
    method: string,
    path: string | ((side: Side) => string),
    body?: unknown | ((side: Side) => unknown),
    headers: Record<string, string> = {},
  ): Promise<Record<Side, Answer>> {
    const at = (side: Side) => (typeof path === 'function' ? path(side) : path);
    const payload = (side: Side) => (typeof body === 'function' ? (body as (s: Side) => unknown)(side) : body);
    const glance = await send('glance', method, at('glance'), payload('glance'), headers);
    const berth = await send('berth', method, at('berth'), payload('berth'), headers);
    const what = `${method} ${at('berth')} ${JSON.stringify(payload('berth')) ?? ''}`;
    assert.equal(
      berth.status,
      glance.status,
      `${what}: the store answered ${berth.status} (${berth.text.slice(0, 300)}), Glance ${glance.status} (${glance.text.replace(/\s+/g, ' ').slice(0, 300)})`,
    );
    return { glance, berth };
  }

  /** Both sides' JSON bodies have the same shape. */
  function sameShape(a: Record<Side, Answer>, what: string): void {
    assert.ok(a.glance.json !== undefined && a.berth.json !== undefined, `${what}: both answer JSON`);
    assert.deepEqual(shape(a.berth.json), shape(a.glance.json), what);
  }

  /** An image made on both sides; returns its id on each. */
  async function createBoth(body: Record<string, unknown>): Promise<Record<Side, string>> {
    const a = await both('POST', '/v2/images', { container_format: 'bare', disk_format: 'raw', tags: [tag], ...body });
    assert.equal(a.glance.status, 201, a.glance.text);
    sameShape(a, 'POST /v2/images');
    created.glance.push(a.glance.json.id);
    created.berth.push(a.berth.json.id);
    return { glance: a.glance.json.id, berth: a.berth.json.id };
  }

  const V20 = { 'content-type': 'application/openstack-images-v2.0-json-patch' };
  const V21 = { 'content-type': 'application/openstack-images-v2.1-json-patch' };

  it('version discovery: / is 300 and /versions 200, with the same versions, statuses and link shape', async () => {
    for (const path of ['/', '/versions']) {
      const a = await both('GET', path);
      assert.equal(a.berth.status, path === '/' ? 300 : 200);
      sameShape(a, path);
      const list = (x: Answer) => (x.json.versions as { id: string; status: string }[]).map((v) => `${v.id} ${v.status}`);
      assert.deepEqual(list(a.berth), list(a.glance));
      for (const v of a.berth.json.versions) assert.equal(v.links[0].href, `${pair.base.berth}/v2/`);
    }
  });

  it("info: /v2/info/import lists a subset of Glance's methods; /v2/info/stores one default store, in Glance's shape", async () => {
    const imports = await both('GET', '/v2/info/import');
    sameShape(imports, '/v2/info/import');
    assert.deepEqual(imports.berth.json['import-methods'].value, ['web-download']);
    assert.ok(imports.glance.json['import-methods'].value.includes('web-download'));
    const stores = await both('GET', '/v2/info/stores');
    sameShape(stores, '/v2/info/stores');
    assert.equal(stores.berth.json.stores.length, 1);
    assert.equal(stores.berth.json.stores[0].default, stores.glance.json.stores.find((s: { default?: string }) => s.default)?.default);
    await both('POST', '/v2/info/import', {});
  });

  it('trailing slashes: /v2/images/ and /v2/schemas/image/ are 404, GET and DELETE alike', async () => {
    for (const [method, path] of [
      ['GET', '/v2/images/'],
      ['DELETE', '/v2/images/'],
      ['GET', '/v2/schemas/image/'],
      ['GET', '/v2/info/import/'],
    ]) {
      assert.equal((await both(method!, path!)).berth.status, 404);
    }
  });

  it("metadefs: the read-only calls answer as Glance's catalog without definitions loaded (keys and statuses)", async () => {
    for (const path of ['/v2/metadefs/namespaces', '/v2/metadefs/namespaces?limit=5&resource_types=OS::Glance::Image', '/v2/metadefs/resource_types']) {
      const a = await both('GET', path);
      assert.equal(a.berth.status, 200, path);
      assert.deepEqual(Object.keys(a.berth.json).sort(), Object.keys(a.glance.json).sort(), path);
      if (a.glance.json.first !== undefined) assert.equal(a.berth.json.first, a.glance.json.first, path);
    }
    for (const path of [
      `/v2/metadefs/namespaces/berth-parity-${run}`,
      `/v2/metadefs/namespaces/berth-parity-${run}/objects`,
      `/v2/metadefs/namespaces/berth-parity-${run}/properties`,
      `/v2/metadefs/namespaces?marker=berth-parity-${run}`,
    ]) {
      assert.equal((await both('GET', path)).berth.status, 404, path);
    }
  });

  it("the cache API and locations answer as the test cloud's Glance, which has both off", async () => {
    const ids = await createBoth({ name: `parity-cache-${run}` });
    for (const [method, path, status] of [
      ['GET', '/v2/cache', 404],
      ['DELETE', '/v2/cache', 404],
      ['PUT', '/v2/cache/ID', 404],
      ['DELETE', '/v2/cache/ID', 404],
      ['GET', '/v2/cache/ID', 405],
      ['GET', '/v2/images/ID/locations', 404],
    ] as const) {
      const a = await both(method, (side) => path.replace('ID', ids[side]));
      assert.equal(a.berth.status, status, `${method} ${path}`);
    }
    for (const op of [
      { op: 'add', path: '/locations/-', value: { url: 'http://127.0.0.1:1/x', metadata: {} } },
      { op: 'replace', path: '/locations', value: [] },
    ]) {
      assert.equal((await both('PATCH', (side) => `/v2/images/${ids[side]}`, [op], V21)).berth.status, 403);
    }
    const shown = await both('GET', (side) => `/v2/images/${ids[side]}`);
    sameShape(shown, 'GET /v2/images/{id}');
  });

  it('PATCH with the v2.0 media type: unprotects a protected image, adds and removes properties; refuses bad items', async () => {
    const ids = await createBoth({ name: `parity-v20-${run}`, protected: true, os_distro: 'debian' });
    assert.equal((await both('DELETE', (side) => `/v2/images/${ids[side]}`)).berth.status, 403);
    const patched = await both(
      'PATCH',
      (side) => `/v2/images/${ids[side]}`,
      [
        { replace: '/protected', value: false },
        { add: '/hw_arch', value: 'x86_64' },
        { remove: '/os_distro' },
        { replace: '/name', value: `parity-v20b-${run}` },
      ],
      V20,
    );
    assert.equal(patched.berth.status, 200);
    sameShape(patched, 'PATCH v2.0');
    assert.equal(patched.berth.json.protected, false);
    for (const ops of [[{ remove: '/hw_arch', add: '/x', value: '1' }], [{ op: 'replace', path: '/name', value: 'x' }]]) {
      assert.equal((await both('PATCH', (side) => `/v2/images/${ids[side]}`, ops, V20)).berth.status, 400);
    }
    assert.equal((await both('DELETE', (side) => `/v2/images/${ids[side]}`)).berth.status, 204);
  });

  it('os_glance_* names: 403 at creation and on add, replace and remove by PATCH', async () => {
    assert.equal((await both('POST', '/v2/images', { name: `parity-reserved-${run}`, tags: [tag], os_glance_foo: 'x' })).berth.status, 403);
    const ids = await createBoth({ name: `parity-reserved-${run}` });
    for (const [ops, headers] of [
      [[{ op: 'add', path: '/os_glance_x', value: 'x' }], V21],
      [[{ op: 'replace', path: '/os_glance_import_task', value: 'x' }], V21],
      [[{ op: 'remove', path: '/os_glance_x' }], V21],
      [[{ add: '/os_glance_x', value: 'x' }], V20],
    ] as const) {
      assert.equal((await both('PATCH', (side) => `/v2/images/${ids[side]}`, ops, headers)).berth.status, 403);
    }
  });

  it('web-download of http(s) URLs: a loopback address, another scheme and credentials are refused before any fetch (400)', async () => {
    const ids = await createBoth({ name: `parity-web-${run}` });
    for (const uri of ['http://127.0.0.1:1/disk.raw', 'ftp://example.com/disk.raw', 'http://user:pw@example.com/disk.raw']) {
      const a = await both('POST', (side) => `/v2/images/${ids[side]}/import`, { method: { name: 'web-download', uri } });
      assert.equal(a.berth.status, 400, uri);
    }
    const shown = await both('GET', (side) => `/v2/images/${ids[side]}`);
    assert.equal(shown.berth.json.status, 'queued');
    assert.equal(shown.glance.json.status, 'queued');
  });

  it('listing filters on core attributes select the same images, and refuse the same bad values', async () => {
    const sizes = [3, 5, 8];
    const ids: Record<Side, string>[] = [];
    for (const [i, size] of sizes.entries()) {
      const made = await createBoth({ name: `parity-list-${run}-${i}`, min_ram: 128 * (i + 1), protected: i === 0 });
      const upload = await both('PUT', (side) => `/v2/images/${made[side]}/file`, randomBytes(size));
      assert.equal(upload.berth.status, 204);
      ids.push(made);
    }
    const names = (a: Answer) => (a.json.images as { name: string }[]).map((i) => i.name).sort();
    const queries = [
      'size=5',
      'size=6',
      'size=abc',
      'size_min=5',
      'size_max=5',
      'size_min=4&size_max=6',
      'size_min=-1',
      'min_ram=256',
      'min_ram_min=200',
      'protected=true',
      'protected=false',
      `name=in:parity-list-${run}-0,parity-list-${run}-2`,
      `name=eq:parity-list-${run}-1`,
      'created_at=gte:2000-01-01T00:00:00Z',
      'updated_at=lt:2000-01-01T00:00:00Z',
      'os_hidden=false',
    ];
    for (const q of queries) {
      const a = await both('GET', `/v2/images?tag=${tag}&${q}`);
      assert.equal(a.berth.status, 200, q);
      assert.deepEqual(names(a.berth), names(a.glance), q);
      for (const image of a.berth.json.images as { name: string }[]) {
        const twin = (a.glance.json.images as { name: string }[]).find((i) => i.name === image.name);
        assert.deepEqual(shape(image), shape(twin), `${q}: ${image.name}`);
      }
    }
    // The one measured difference: Glance sizes a bare upload's disk (virtual_size 5 here), the store never does.
    assert.deepEqual(names((await both('GET', `/v2/images?tag=${tag}&virtual_size=5`)).berth), []);
    const byId = await both('GET', (side) => `/v2/images?tag=${tag}&id=${ids[1]![side]}`);
    assert.deepEqual(names(byId.berth), [`parity-list-${run}-1`]);
    assert.deepEqual(names(byId.glance), [`parity-list-${run}-1`]);
    for (const q of ['size_min=abc', 'protected=maybe', 'os_hidden=maybe', 'created_at=soon', 'changes-since=2000-01-01T00:00:00Z', 'visibility=nope']) {
      assert.equal((await both('GET', `/v2/images?tag=${tag}&${q}`)).berth.status, 400, q);
    }
  });
});
