import assert from 'node:assert/strict';
import { call, startApiServer } from './api-server.js';
import { createHarness, type Harness } from './harness.js';

const PATCH = { 'content-type': 'application/openstack-images-v2.1-json-patch' };

describe('glance-bridge Glance v2 metadata API', () => {
  let h: Harness;
  let api: { base: string; close(): Promise<void> };

  beforeEach(async () => {
    h = await createHarness();
    api = await startApiServer(h);
  });
  afterEach(async () => {
    await api.close();
    await h.close();
  });

  const create = async (body: Record<string, unknown>) =>
    (await call(api.base, 'POST', '/v2/images', { container_format: 'bare', disk_format: 'raw', ...body })).json as Record<string, any>;
  const patch = (id: string, ops: unknown, headers = PATCH) => call(api.base, 'PATCH', `/v2/images/${id}`, JSON.stringify(ops), headers);

  it("patches base attributes and custom properties with Glance's answers for bad ops", async () => {
    const image = await create({ name: 'before', tags: ['a'], os_distro: 'busybox' });
    const ok = await patch(image.id, [
      { op: 'replace', path: '/name', value: 'after' },
      { op: 'replace', path: '/min_ram', value: 128 },
      { op: 'add', path: '/hw_arch', value: 'x86_64' },
      { op: 'remove', path: '/os_distro' },
      { op: 'replace', path: '/tags', value: ['b', 'c'] },
      { op: 'replace', path: '/visibility', value: 'private' },
      { op: 'replace', path: '/container_format', value: 'docker' },
    ]);
    assert.equal(ok.status, 200);
    assert.equal(ok.json.name, 'after');
    assert.equal(ok.json.min_ram, 128);
    assert.equal(ok.json.hw_arch, 'x86_64');
    assert.equal(ok.json.os_distro, undefined);
    assert.deepEqual(ok.json.tags, ['b', 'c']);
    assert.equal(ok.json.visibility, 'private');
    assert.equal(ok.json.container_format, 'docker');

    const refusals: [unknown, number, string][] = [
      [[{ op: 'replace', path: '/status', value: 'active' }], 403, 'ATTRIBUTE_FORBIDDEN'],
      [[{ op: 'replace', path: '/id', value: image.id }], 403, 'ATTRIBUTE_FORBIDDEN'],
      [[{ op: 'add', path: '/docker_image_id', value: 'sha256:x' }], 403, 'ATTRIBUTE_FORBIDDEN'],
      [[{ op: 'remove', path: '/name' }], 403, 'ATTRIBUTE_FORBIDDEN'],
      [[{ op: 'replace', path: '/nope', value: 'x' }], 409, 'IMAGE_CONFLICT'],
      [[{ op: 'remove', path: '/nope' }], 409, 'IMAGE_CONFLICT'],
      [[{ op: 'replace', path: '/min_ram', value: -1 }], 400, 'INVALID_INPUT'],
      [[{ op: 'add', path: '/custom', value: 5 }], 400, 'INVALID_INPUT'],
      [[{ op: 'move', path: '/name', from: '/x' }], 400, 'INVALID_INPUT'],
      [{ op: 'replace' }, 400, 'INVALID_INPUT'],
    ];
    for (const [ops, status, code] of refusals) {
      const res = await patch(image.id, ops);
      assert.equal(res.status, status, JSON.stringify(ops));
      assert.equal(res.json.error.code, code, JSON.stringify(ops));
    }
    assert.equal((await patch(image.id, [], { 'content-type': 'application/json' })).status, 415);
    assert.equal((await call(api.base, 'GET', `/v2/images/${image.id}`)).json.name, 'after');
  });

  it('changes formats only while queued, and keeps protected images from deletion', async () => {
    const image = await create({ name: 'p', protected: true });
    await h.images.transition(image.id, 'saving');
    await h.images.transition(image.id, 'active');
    const formats = await patch(image.id, [{ op: 'replace', path: '/disk_format', value: 'qcow2' }]);
    assert.equal(formats.status, 403);
    const del = await call(api.base, 'DELETE', `/v2/images/${image.id}`);
    assert.equal(del.status, 403);
    assert.equal(del.json.error.code, 'IMAGE_PROTECTED');
    assert.equal((await patch(image.id, [{ op: 'replace', path: '/protected', value: false }])).status, 200);
    assert.equal((await call(api.base, 'DELETE', `/v2/images/${image.id}`)).status, 204);
  });

  it('adds and removes tags, and deactivates and reactivates active images only', async () => {
    const image = await create({ name: 't' });
    assert.equal((await call(api.base, 'PUT', `/v2/images/${image.id}/tags/blue`)).status, 204);
    assert.equal((await call(api.base, 'PUT', `/v2/images/${image.id}/tags/blue`)).status, 204);
    assert.deepEqual((await call(api.base, 'GET', `/v2/images/${image.id}`)).json.tags, ['blue']);
    assert.equal((await call(api.base, 'DELETE', `/v2/images/${image.id}/tags/blue`)).status, 204);
    assert.equal((await call(api.base, 'DELETE', `/v2/images/${image.id}/tags/blue`)).status, 404);

    assert.equal((await call(api.base, 'POST', `/v2/images/${image.id}/actions/deactivate`)).status, 403);
    await h.images.transition(image.id, 'saving');
    await h.images.transition(image.id, 'active');
    assert.equal((await call(api.base, 'POST', `/v2/images/${image.id}/actions/deactivate`)).status, 204);
    assert.equal((await call(api.base, 'POST', `/v2/images/${image.id}/actions/deactivate`)).status, 204);
    assert.equal((await call(api.base, 'GET', `/v2/images/${image.id}`)).json.status, 'deactivated');
    assert.equal((await call(api.base, 'GET', `/v2/images/${image.id}/file`)).status, 403);
    assert.equal((await call(api.base, 'POST', `/v2/images/${image.id}/actions/reactivate`)).status, 204);
    assert.equal((await call(api.base, 'GET', `/v2/images/${image.id}`)).json.status, 'active');
  });

  it('filters by core attributes, tags, owner and custom properties', async () => {
    await create({ name: 'a', tags: ['x', 'y'], os_distro: 'debian' });
    // Images of another project: only an admin creates them, and lists them (they are shared, not public).
    const admin = { 'x-roles': 'admin' };
    assert.equal(
      (
        await call(
          api.base,
          'POST',
          '/v2/images',
          { container_format: 'bare', disk_format: 'raw', name: 'b', tags: ['x'], os_distro: 'alpine', owner: 'other' },
          admin,
        )
      ).status,
      201,
    );
    await create({ name: 'c', container_format: 'docker' });
    const names = async (q: string) =>
      ((await call(api.base, 'GET', `/v2/images?${q}`, undefined, admin)).json.images as { name: string }[]).map((i) => i.name).sort();
    assert.deepEqual(await names('tag=x'), ['a', 'b']);
    assert.deepEqual(await names('tag=x&tag=y'), ['a']);
    assert.deepEqual(await names('os_distro=alpine'), ['b']);
    assert.deepEqual(await names('owner=other'), ['b']);
    assert.deepEqual(await names('container_format=docker'), ['c']);
    assert.deepEqual(await names('visibility=all'), ['a', 'b', 'c']);
    assert.deepEqual(await names('visibility=shared&disk_format=raw'), ['a', 'b', 'c']);
    assert.equal((await call(api.base, 'GET', '/v2/images?visibility=everyone')).status, 400);
  });

  it('sorts by sort_key/sort_dir or sort=key:dir and pages through with next', async () => {
    for (const [name, min_ram] of [
      ['m', 3],
      ['k', 1],
      ['z', 2],
      ['a', 2],
    ] as const)
      await create({ name, min_ram });
    const order = async (q: string) => ((await call(api.base, 'GET', `/v2/images?${q}`)).json.images as { name: string }[]).map((i) => i.name);
    assert.deepEqual(await order('sort_key=name&sort_dir=asc'), ['a', 'k', 'm', 'z']);
    assert.deepEqual(await order('sort=name:desc'), ['z', 'm', 'k', 'a']);
    assert.deepEqual(await order('sort=min_ram:asc,name:desc'), ['k', 'z', 'a', 'm']);
    assert.deepEqual(await order('sort_key=min_ram&sort_key=name&sort_dir=desc&sort_dir=asc'), ['m', 'a', 'z', 'k']);
    assert.equal((await call(api.base, 'GET', '/v2/images?sort=name&sort_key=name')).status, 400);
    assert.equal((await call(api.base, 'GET', '/v2/images?sort=name:sideways')).status, 400);

    const seen: string[] = [];
    let path: string | undefined = '/v2/images?sort=name:asc&limit=3';
    for (let page = 0; path && page < 5; page++) {
      const res = await call(api.base, 'GET', path);
      seen.push(...(res.json.images as { name: string }[]).map((i) => i.name));
      path = res.json.next;
    }
    assert.deepEqual(seen, ['a', 'k', 'm', 'z']);
  });

  it('serves the image and images schemas, declaring every attribute an image view has', async () => {
    const schema = (await call(api.base, 'GET', '/v2/schemas/image')).json;
    assert.equal(schema.name, 'image');
    assert.deepEqual(schema.additionalProperties, { type: 'string' });
    const image = await create({ name: 's', custom: 'v' });
    for (const [key, value] of Object.entries(image)) {
      if (!(key in schema.properties)) assert.equal(typeof value, 'string', `${key} is neither declared nor a string`);
    }
    const images = (await call(api.base, 'GET', '/v2/schemas/images')).json;
    assert.equal(images.name, 'images');
    assert.equal(images.properties.images.items.name, 'image');
  });

  it('answers errors in a body python-glanceclient turns into the message', async () => {
    const missing = await call(api.base, 'GET', `/v2/images/${'2'.repeat(8)}-2222-2222-2222-222222222222`);
    assert.equal(missing.status, 404);
    assert.match(missing.headers.get('content-type') ?? '', /json/);
    // glanceclient joins the `message` of every top-level object of a JSON error body.
    const messages = Object.values(missing.json as Record<string, { message?: string }>).map((o) => o.message);
    assert.deepEqual(messages, [missing.json.error.message]);
  });
});
