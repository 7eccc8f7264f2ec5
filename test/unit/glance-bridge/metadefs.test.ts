import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MetadefCatalog, MetadefFileError } from '../../../glance-bridge/metadefs/catalog.js';
import { ROOT } from '../../support/fixtures.js';
import { call, startApiServer } from './api-server.js';
import { createHarness, type Harness } from './harness.js';

const DEFS = join(ROOT, 'test', 'fixtures', 'metadefs');
const GUEST = '/v2/metadefs/namespaces/OS::Berth::TestGuest';
const ADMIN = { 'x-roles': 'admin' };

describe('glance-bridge metadata definitions loaded from files', () => {
  let h: Harness;
  let api: { base: string; close(): Promise<void> };
  before(async () => {
    h = await createHarness();
    api = await startApiServer(h, { metadefs: MetadefCatalog.loadDir(DEFS, 'berth') });
  });
  after(async () => {
    await api.close();
    await h.close();
  });
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await call(api.base, 'GET', path, undefined, headers);
    return res;
  };

  it('lists the namespaces a project may see, as Glance summarises them', async () => {
    const res = await get('/v2/metadefs/namespaces');
    assert.equal(res.status, 200);
    assert.deepEqual(
      res.json.namespaces.map((n: { namespace: string }) => n.namespace),
      ['OS::Berth::TestGuest'],
    );
    const [ns] = res.json.namespaces;
    assert.deepEqual(Object.keys(ns).sort(), [
      'created_at',
      'description',
      'display_name',
      'namespace',
      'owner',
      'protected',
      'resource_type_associations',
      'schema',
      'self',
      'updated_at',
      'visibility',
    ]);
    assert.equal(ns.owner, 'berth');
    assert.equal(ns.protected, true);
    assert.equal(ns.self, GUEST);
    assert.deepEqual(Object.keys(ns.resource_type_associations[0]).sort(), ['created_at', 'name', 'prefix', 'updated_at']);
    assert.equal(res.json.schema, '/v2/schemas/metadefs/namespaces');
    assert.equal(res.json.first, '/v2/metadefs/namespaces');
    assert.equal(res.json.next, undefined);
  });

  it('shows private namespaces to admins and their owner only', async () => {
    const names = async (headers: Record<string, string>) =>
      (await get('/v2/metadefs/namespaces?sort_key=namespace&sort_dir=asc', headers)).json.namespaces.map((n: { namespace: string }) => n.namespace);
    assert.deepEqual(await names(ADMIN), ['OS::Berth::TestGuest', 'OS::Berth::TestPrivate']);
    assert.deepEqual(await names({ 'x-project-id': 'berth-test-owner' }), ['OS::Berth::TestGuest', 'OS::Berth::TestPrivate']);
    assert.equal((await get('/v2/metadefs/namespaces/OS::Berth::TestPrivate')).status, 404);
    assert.equal((await get('/v2/metadefs/namespaces/OS::Berth::TestPrivate/properties', ADMIN)).status, 200);
  });

  it('filters by visibility and resource type, and pages with limit, marker and next', async () => {
    assert.deepEqual(
      (await get('/v2/metadefs/namespaces?visibility=private', ADMIN)).json.namespaces.map((n: { namespace: string }) => n.namespace),
      ['OS::Berth::TestPrivate'],
    );
    assert.equal((await get('/v2/metadefs/namespaces?resource_types=OS::Cinder::Volume')).json.namespaces.length, 0);
    assert.equal((await get('/v2/metadefs/namespaces?resource_types=OS::Cinder::Volume,OS::Nova::Flavor')).json.namespaces.length, 1);
    const first = await get('/v2/metadefs/namespaces?limit=1&sort_key=namespace&sort_dir=asc', ADMIN);
    assert.equal(first.json.namespaces[0].namespace, 'OS::Berth::TestGuest');
    assert.equal(first.json.next, '/v2/metadefs/namespaces?limit=1&sort_key=namespace&sort_dir=asc&marker=OS%3A%3ABerth%3A%3ATestGuest');
    const second = await get(first.json.next, ADMIN);
    assert.deepEqual(
      second.json.namespaces.map((n: { namespace: string }) => n.namespace),
      ['OS::Berth::TestPrivate'],
    );
    assert.equal((await get('/v2/metadefs/namespaces?marker=OS::Berth::TestPrivate')).status, 404, 'a marker the caller may not see');
    for (const bad of ['limit=x', 'limit=1001', 'sort_key=owner', 'sort_dir=up', 'visibility=shared'])
      assert.equal((await get(`/v2/metadefs/namespaces?${bad}`)).status, 400, bad);
  });

  it('shows a namespace whole: properties, objects with their links, tags; ?resource_type= prefixes property names', async () => {
    const ns = (await get(GUEST)).json;
    assert.deepEqual(Object.keys(ns.properties), ['console']);
    assert.deepEqual(ns.tags, [{ name: 'container' }, { name: 'test' }]);
    const [limits] = ns.objects;
    assert.equal(limits.self, `${GUEST}/objects/Limits`);
    assert.equal(limits.schema, '/v2/schemas/metadefs/object');
    assert.deepEqual(limits.required, ['pids']);
    const forImages = (await get(`${GUEST}?resource_type=OS::Glance::Image`)).json;
    assert.deepEqual(Object.keys(forImages.properties), ['berth_test_console']);
    assert.deepEqual(Object.keys(forImages.objects[0].properties), ['berth_test_pids', 'berth_test_nofile']);
    assert.deepEqual(forImages.objects[0].required, ['berth_test_pids']);
    assert.deepEqual(Object.keys((await get(`${GUEST}?resource_type=OS::Nova::Flavor`)).json.properties), ['berth_test:console']);
  });

  it('answers each part of a namespace, and 404 for what it does not hold', async () => {
    const objects = (await get(`${GUEST}/objects`)).json;
    assert.equal(objects.schema, 'v2/schemas/metadefs/objects');
    assert.deepEqual(
      objects.objects.map((o: { name: string }) => o.name),
      ['Limits'],
    );
    assert.equal((await get(`${GUEST}/objects/Limits`)).json.name, 'Limits');
    assert.deepEqual((await get(`${GUEST}/properties`)).json, {
      properties: { console: { title: 'Console', description: 'Where the guest writes its console.', type: 'string', enum: ['serial', 'log'] } },
    });
    assert.deepEqual((await get(`${GUEST}/properties/console`)).json.name, 'console');
    assert.deepEqual((await get(`${GUEST}/tags`)).json, { tags: [{ name: 'container' }, { name: 'test' }] });
    assert.deepEqual(Object.keys((await get(`${GUEST}/tags/test`)).json).sort(), ['created_at', 'name', 'updated_at']);
    assert.deepEqual(
      (await get(`${GUEST}/resource_types`)).json.resource_type_associations.map((a: { name: string; prefix: string }) => [a.name, a.prefix]),
      [
        ['OS::Glance::Image', 'berth_test_'],
        ['OS::Nova::Flavor', 'berth_test:'],
      ],
    );
    assert.deepEqual(
      (await get('/v2/metadefs/resource_types')).json.resource_types.map((r: { name: string }) => r.name),
      ['OS::Glance::Image', 'OS::Nova::Flavor'],
    );
    for (const path of [
      `${GUEST}/objects/Nope`,
      `${GUEST}/properties/nope`,
      `${GUEST}/properties/__proto__`,
      `${GUEST}/tags/nope`,
      '/v2/metadefs/namespaces/OS::Nope',
    ])
      assert.equal((await get(path)).status, 404, path);
    assert.equal((await call(api.base, 'DELETE', GUEST, undefined, ADMIN)).status, 405);
  });

  it('publishes the schemas of every answer at /v2/schemas/metadefs/*', async () => {
    for (const [name, member] of [
      ['namespace', 'namespace'],
      ['object', 'name'],
      ['property', 'name'],
      ['tag', 'name'],
      ['resource_type', 'name'],
    ]) {
      const res = await get(`/v2/schemas/metadefs/${name}`);
      assert.equal(res.status, 200, name);
      assert.ok(res.json.properties[member!], `${name} describes ${member}`);
      assert.equal(res.json.additionalProperties, false, name);
    }
    for (const [name, member] of [
      ['namespaces', 'namespaces'],
      ['objects', 'objects'],
      ['properties', 'properties'],
      ['tags', 'tags'],
      ['resource_types', 'resource_type_associations'],
    ]) {
      const res = await get(`/v2/schemas/metadefs/${name}`);
      assert.equal(res.status, 200, name);
      assert.deepEqual(Object.keys(res.json.properties).sort(), [member, 'first', 'next', 'schema'].sort(), name);
      assert.deepEqual(
        res.json.links.map((l: { rel: string }) => l.rel),
        ['first', 'next', 'describedby'],
        name,
      );
    }
    assert.equal((await get('/v2/schemas/metadefs/nope')).status, 404);
  });

  describe('loading', () => {
    let dir: string;
    beforeEach(() => {
      dir = mkdtempSync(join(tmpdir(), 'berth-metadefs-'));
    });
    afterEach(() => rmSync(dir, { recursive: true, force: true }));
    const refused = (files: Record<string, string>, why: RegExp) => {
      const own = mkdtempSync(join(dir, 'case-'));
      for (const [name, text] of Object.entries(files)) writeFileSync(join(own, name), text);
      assert.throws(
        () => MetadefCatalog.loadDir(own, 'berth'),
        (err: unknown) => err instanceof MetadefFileError && why.test(err.message),
      );
    };

    it('refuses a file Glance would not load, naming the file and what is wrong', () => {
      refused({ 'a.json': '{"namespace": ' }, /a\.json: not a JSON metadata definitions file/);
      refused({ 'b.json': '{"display_name": "x"}' }, /b\.json: namespace is missing/);
      refused({ 'c.json': '{"namespace": "n", "visibility": "shared"}' }, /c\.json: visibility must be public or private/);
      refused({ 'd.json': '{"namespace": "n", "objects": [{"description": "no name"}]}' }, /d\.json: objects\[0\] needs a name/);
      refused({ 'e.json': '{"namespace": "n", "properties": {"p": 5}}' }, /e\.json: properties\.p must be an object/);
      refused({ 'f.json': '{"namespace": "same"}', 'g.json': '{"namespace": "same"}' }, /g\.json: namespace same is defined twice/);
    });

    it('names a folder it cannot read, and loads nothing but .json files', () => {
      assert.throws(() => MetadefCatalog.loadDir(join(dir, 'absent'), 'berth'), /metadefs_path .*absent: cannot read the folder \(ENOENT\)/);
      writeFileSync(join(dir, 'README'), 'not a definition');
      writeFileSync(join(dir, 'x.json'), '{"namespace": "OS::X"}');
      const catalog = MetadefCatalog.loadDir(dir, 'berth');
      assert.deepEqual(
        catalog.namespaces().map((n) => [n.namespace, n.visibility, n.protected, n.owner]),
        [['OS::X', 'private', false, 'berth']],
      );
    });
  });
});
