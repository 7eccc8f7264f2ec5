import assert from 'node:assert/strict';
import { call, startApiServer } from './api-server.js';
import { createHarness, type Harness } from './harness.js';

const V21 = { 'content-type': 'application/openstack-images-v2.1-json-patch' };
const V20 = { 'content-type': 'application/openstack-images-v2.0-json-patch' };
const ADMIN = { 'x-roles': 'admin' };

/** The answers glance-parity.it.ts measured on a real Glance Zed, held here against the store alone. */
describe('glance-bridge parity with Glance Zed', () => {
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

  const create = async (body: Record<string, unknown>, headers: Record<string, string> = {}) => {
    const res = await call(api.base, 'POST', '/v2/images', { container_format: 'bare', disk_format: 'raw', ...body }, headers);
    assert.equal(res.status, 201, JSON.stringify(res.json));
    return res.json as Record<string, any>;
  };
  const patch = (id: string, ops: unknown, headers: Record<string, string>) => call(api.base, 'PATCH', `/v2/images/${id}`, JSON.stringify(ops), headers);

  describe('version discovery and info', () => {
    it('answers / with 300 and /versions with 200: v2.15 current, v2.13 to v2.0 supported, linking /v2/', async () => {
      const root = await call(api.base, 'GET', '/');
      assert.equal(root.status, 300);
      assert.match(root.headers.get('content-type') ?? '', /^application\/json/);
      const versions = await call(api.base, 'GET', '/versions');
      assert.equal(versions.status, 200);
      assert.deepEqual(versions.json, root.json);
      const ids = (versions.json.versions as { id: string; status: string }[]).map((v) => `${v.id} ${v.status}`);
      assert.deepEqual(ids, ['v2.15 CURRENT', ...['13', '12', '11', '10', '9', '8', '7', '6', '5', '4', '3', '2', '1', '0'].map((n) => `v2.${n} SUPPORTED`)]);
      for (const v of versions.json.versions) assert.deepEqual(v.links, [{ rel: 'self', href: `${api.base}/v2/` }]);
      assert.equal((await call(api.base, 'GET', '/versions/')).status, 200);
    });

    it('lists web-download as the import method and one default store', async () => {
      const imports = await call(api.base, 'GET', '/v2/info/import');
      assert.equal(imports.status, 200);
      assert.deepEqual(imports.json, { 'import-methods': { description: 'Import methods available.', type: 'array', value: ['web-download'] } });
      const stores = await call(api.base, 'GET', '/v2/info/stores');
      assert.equal(stores.status, 200);
      assert.deepEqual(stores.json, { stores: [{ id: 'berth', default: 'true' }] });
      assert.equal((await call(api.base, 'POST', '/v2/info/import', {})).status, 405);
    });

    it('names the store of an image with data (stores), as Glance with multiple stores does, and declares it in the schema', async () => {
      const image = await create({ name: 's' });
      assert.equal(image.stores, undefined, 'a queued image has no data');
      assert.equal((await call(api.base, 'PUT', `/v2/images/${image.id}/file`, Buffer.from('data'))).status, 204);
      assert.equal((await call(api.base, 'GET', `/v2/images/${image.id}`)).json.stores, 'berth');
      const schema = (await call(api.base, 'GET', '/v2/schemas/image')).json;
      assert.equal(schema.properties.stores.readOnly, true);
      const refused = await call(api.base, 'POST', '/v2/images', { name: 'x', stores: 'berth' });
      assert.ok(refused.status === 400 || refused.status === 403, 'stores is read-only');
    });

    it('answers the cache API as a Glance without an image cache: 404, or 405 for methods it never routes', async () => {
      const image = await create({ name: 'c' });
      for (const [method, path] of [
        ['GET', '/v2/cache'],
        ['DELETE', '/v2/cache'],
        ['PUT', `/v2/cache/${image.id}`],
        ['DELETE', `/v2/cache/${image.id}`],
      ] as const) {
        const res = await call(api.base, method, path);
        assert.equal(res.status, 404, `${method} ${path}`);
        assert.equal(res.json.error.message, 'Caching via API is not supported at this site.');
      }
      assert.equal((await call(api.base, 'GET', `/v2/cache/${image.id}`)).status, 405);
    });

    it('answers 404 with an error body for /v2/images/ and other paths with a trailing slash', async () => {
      await create({ name: 'listed' });
      for (const method of ['GET', 'DELETE', 'POST']) {
        const res = await call(api.base, method, '/v2/images/');
        assert.equal(res.status, 404, method);
        assert.equal(res.json.error.code, 'NOT_FOUND');
      }
      assert.equal((await call(api.base, 'GET', '/v2/schemas/image/')).status, 404);
      assert.equal((await call(api.base, 'GET', '/v2/images')).json.images.length, 1);
    });
  });

  describe('metadefs', () => {
    it('serves an empty, read-only catalog: empty lists, 404 for any namespace, 405 for writes', async () => {
      const list = await call(api.base, 'GET', '/v2/metadefs/namespaces?limit=5&resource_types=OS::Glance::Image');
      assert.equal(list.status, 200);
      assert.deepEqual(list.json, {
        namespaces: [],
        schema: '/v2/schemas/metadefs/namespaces',
        first: '/v2/metadefs/namespaces?limit=5&resource_types=OS%3A%3AGlance%3A%3AImage',
      });
      assert.deepEqual((await call(api.base, 'GET', '/v2/metadefs/namespaces')).json.first, '/v2/metadefs/namespaces');
      assert.deepEqual((await call(api.base, 'GET', '/v2/metadefs/resource_types')).json, { resource_types: [] });
      for (const path of [
        '/v2/metadefs/namespaces/OS::Compute::Hypervisor',
        '/v2/metadefs/namespaces/x/objects',
        '/v2/metadefs/namespaces/x/properties/p',
        '/v2/metadefs/namespaces/x/tags',
        '/v2/metadefs/namespaces/x/resource_types',
        '/v2/metadefs/namespaces?marker=abc',
      ]) {
        const res = await call(api.base, 'GET', path);
        assert.equal(res.status, 404, path);
        assert.match(res.json.error.message, /^Metadata definition namespace=.* was not found\.$/);
      }
      assert.equal((await call(api.base, 'POST', '/v2/metadefs/namespaces', { namespace: 'x' })).status, 405);
    });
  });

  describe('PATCH', () => {
    it('takes the v2.0 JSON patch (op as the key): unprotects a protected image, adds, replaces and removes', async () => {
      const image = await create({ name: 'p', protected: true, os_distro: 'debian' });
      assert.equal((await call(api.base, 'DELETE', `/v2/images/${image.id}`)).status, 403);
      const res = await patch(
        image.id,
        [{ replace: '/protected', value: false }, { replace: '/name', value: 'renamed' }, { add: '/hw_arch', value: 'x86_64' }, { remove: '/os_distro' }],
        V20,
      );
      assert.equal(res.status, 200, JSON.stringify(res.json));
      assert.equal(res.json.protected, false);
      assert.equal(res.json.name, 'renamed');
      assert.equal(res.json.hw_arch, 'x86_64');
      assert.equal(res.json.os_distro, undefined);
      assert.equal((await call(api.base, 'DELETE', `/v2/images/${image.id}`)).status, 204);
    });

    it('refuses v2.0 items with no op key or several (400), and keeps v2.0 to its own shape', async () => {
      const image = await create({ name: 'p' });
      for (const ops of [[{ remove: '/foo', add: '/x', value: '1' }], [{ op: 'replace', path: '/name', value: 'x' }], [{ value: 'x' }], { replace: '/name' }]) {
        const res = await patch(image.id, ops, V20);
        assert.equal(res.status, 400, JSON.stringify(ops));
        assert.equal(res.json.error.code, 'INVALID_INPUT');
      }
      // The same v2.1-shaped body is fine with its own media type.
      assert.equal((await patch(image.id, [{ op: 'replace', path: '/name', value: 'x' }], V21)).status, 200);
      assert.equal((await patch(image.id, [{ replace: '/status', value: 'active' }], V20)).status, 403);
    });

    it('answers any op on locations with 403 (locations are not shown), in both dialects', async () => {
      const image = await create({ name: 'l' });
      const cases: [unknown, Record<string, string>][] = [
        [[{ op: 'add', path: '/locations/-', value: { url: 'http://x/y', metadata: {} } }], V21],
        [[{ op: 'replace', path: '/locations', value: [] }], V21],
        [[{ op: 'remove', path: '/locations/0' }], V21],
        [[{ add: '/locations/-', value: { url: 'http://x/y', metadata: {} } }], V20],
      ];
      for (const [ops, headers] of cases) {
        const res = await patch(image.id, ops, headers);
        assert.equal(res.status, 403, JSON.stringify(ops));
        assert.equal(res.json.error.code, 'ATTRIBUTE_FORBIDDEN');
      }
      const shown = (await call(api.base, 'GET', `/v2/images/${image.id}`)).json;
      assert.equal('locations' in shown, false);
      assert.equal('direct_url' in shown, false);
      assert.equal((await call(api.base, 'GET', `/v2/images/${image.id}/locations`)).status, 404);
    });
  });

  describe('os_glance_* properties', () => {
    it('are refused with 403 at creation, to admins too', async () => {
      for (const headers of [{}, ADMIN]) {
        const res = await call(api.base, 'POST', '/v2/images', { name: 'r', os_glance_foo: 'x' }, headers);
        assert.equal(res.status, 403);
        assert.equal(res.json.error.code, 'ATTRIBUTE_FORBIDDEN');
      }
      assert.equal((await call(api.base, 'GET', '/v2/images', undefined, ADMIN)).json.images.length, 0);
    });

    it('are refused with 403 on add, replace and remove by PATCH, in both dialects', async () => {
      const image = await create({ name: 'r' });
      for (const [ops, headers] of [
        [[{ op: 'add', path: '/os_glance_x', value: 'x' }], V21],
        [[{ op: 'replace', path: '/os_glance_import_task', value: 'x' }], V21],
        [[{ op: 'remove', path: '/os_glance_x' }], V21],
        [[{ add: '/os_glance_x', value: 'x' }], V20],
      ] as [unknown, Record<string, string>][]) {
        for (const who of [{}, ADMIN]) {
          const res = await patch(image.id, ops, { ...headers, ...who });
          assert.equal(res.status, 403, JSON.stringify(ops));
          assert.equal(res.json.error.message, `Attribute '${(JSON.stringify(ops).match(/os_glance_\w+/) ?? [''])[0]}' is reserved.`);
        }
      }
    });
  });

  describe('listing filters', () => {
    const names = async (q: string) => {
      const res = await call(api.base, 'GET', `/v2/images?${q}`);
      assert.equal(res.status, 200, `${q}: ${JSON.stringify(res.json)}`);
      return (res.json.images as { name: string }[]).map((i) => i.name).sort();
    };

    it('filters size, size_min and size_max on the image size, not as a custom property', async () => {
      for (const [name, size] of [
        ['s10', 10],
        ['s20', 20],
        ['s30', 30],
      ] as const) {
        const image = await create({ name });
        await h.images.update(image.id, 'queued', { size });
      }
      await create({ name: 'empty' });
      assert.deepEqual(await names('size=20'), ['s20']);
      assert.deepEqual(await names('size=21'), []);
      assert.deepEqual(await names('size=abc'), [], 'a size that is no integer matches nothing, as on Glance');
      assert.deepEqual(await names('size_min=20'), ['s20', 's30']);
      assert.deepEqual(await names('size_max=20'), ['s10', 's20']);
      assert.deepEqual(await names('size_min=11&size_max=29'), ['s20']);
      assert.deepEqual(await names('size_min=-1'), ['s10', 's20', 's30']);
      const bad = await call(api.base, 'GET', '/v2/images?size_min=abc');
      assert.equal(bad.status, 400);
      assert.equal(bad.json.error.message, 'Unable to filter on a range with a non-numeric value.');
    });

    it("filters the other columns of Glance's images table: id, checksum, min_ram, min_disk, protected, times, in:", async () => {
      const a = await create({ name: 'a', min_ram: 512, min_disk: 1, protected: true });
      const b = await create({ name: 'b', min_ram: 1024 });
      await create({ name: 'c,d' });
      await h.images.update(b.id, 'queued', { checksum: 'c'.repeat(32), os_hash_algo: 'sha512', os_hash_value: 'f'.repeat(128) });
      assert.deepEqual(await names(`id=${a.id}`), ['a']);
      assert.deepEqual(await names('id=abc'), []);
      assert.deepEqual(await names(`checksum=${'c'.repeat(32)}`), ['b']);
      assert.deepEqual(await names(`os_hash_value=${'f'.repeat(128)}`), ['b']);
      assert.deepEqual(await names('os_hash_algo=sha512'), ['b']);
      assert.deepEqual(await names('min_ram=512'), ['a']);
      assert.deepEqual(await names('min_ram_min=600'), ['b']);
      assert.deepEqual(await names('min_disk=1'), ['a']);
      assert.deepEqual(await names('protected=true'), ['a']);
      assert.deepEqual(await names('protected=false'), ['b', 'c,d']);
      assert.deepEqual(await names(`name=${encodeURIComponent('in:a,"c,d"')}`), ['a', 'c,d']);
      assert.deepEqual(await names('name=eq:b'), ['b']);
      assert.deepEqual(await names(`id=in:${a.id},${b.id}`), ['a', 'b']);
      assert.deepEqual(await names('virtual_size=0'), [], 'Berth records no virtual size');
      assert.deepEqual(await names('created_at=gte:2000-01-01T00:00:00Z'), ['a', 'b', 'c,d']);
      assert.deepEqual(await names('created_at=lt:2000-01-01T00:00:00Z'), []);
      assert.deepEqual(await names(`updated_at=${encodeURIComponent('gt:2999-01-01T00:00:00+00:00')}`), []);
      for (const [q, message] of [
        ['protected=maybe', "Invalid value 'maybe' for 'protected' filter. Valid values are 'true' or 'false'."],
        ['os_hidden=maybe', "Invalid value 'maybe' for 'os_hidden' filter. Valid values are 'true' or 'false'."],
        ['created_at=soon', 'Bad "created_at" query filter format. Use ISO 8601 DateTime notation.'],
        ['created_at=after:2000-01-01T00:00:00Z', "Unable to filter on a unknown operator 'after'."],
        ['changes-since=2000-01-01T00:00:00Z', 'The "changes-since" filter is no longer available on v2.'],
      ]) {
        const res = await call(api.base, 'GET', `/v2/images?${q}`);
        assert.equal(res.status, 400, q);
        assert.equal(res.json.error.message, message);
      }
    });
  });
});
