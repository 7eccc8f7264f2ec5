import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../support/fixtures.js';
import { shape, startParityPair, type ParityPair, type Side } from './parity.js';

/**
 * One namespace of definitions, loaded into the test cloud's Glance through its API and into the
 * image store from a file of Glance's format (`[image_store] metadefs_path`): every read-only
 * call must answer with the same status, the same keys and value types, and the same names,
 * prefixes and property definitions. Owners and dates differ by nature and are compared by type.
 */
describe('glance-bridge metadefs loaded from files answer as the real Glance Zed with the same definitions', function () {
  this.timeout(120_000);
  const namespace = `OS::Berth::TestGuest${randomBytes(3).toString('hex')}`;
  const definition = {
    ...(JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'metadefs', 'berth-test-guest.json'), 'utf8')) as Record<string, unknown>),
    namespace,
  };
  let pair: ParityPair;
  let loaded = false;
  const send = (side: Side, method: string, path: string, body?: unknown) => pair.send(side, method, path, body);

  before(async () => {
    pair = await startParityPair({}, (dir) => {
      mkdirSync(join(dir, 'metadefs'));
      writeFileSync(join(dir, 'metadefs', 'guest.json'), JSON.stringify(definition));
      return { metadefs_path: join(dir, 'metadefs') };
    });
    const created = await send('glance', 'POST', '/v2/metadefs/namespaces', definition);
    assert.equal(created.status, 201, JSON.stringify(created.json));
    loaded = true;
  });
  after(async () => {
    if (loaded) {
      // Protected, as the definition says: unprotect, then delete.
      await send('glance', 'PUT', `/v2/metadefs/namespaces/${namespace}`, { namespace, visibility: 'public', protected: false });
      await send('glance', 'DELETE', `/v2/metadefs/namespaces/${namespace}`);
    }
    await pair?.close();
  });

  /** The answer without what differs by nature (owner, dates), tag lists as sets. */
  const comparable = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(comparable).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(
        Object.entries(v as Record<string, unknown>)
          .filter(([k]) => !['owner', 'created_at', 'updated_at'].includes(k))
          .map(([k, x]) => [k, comparable(x)]),
      );
    }
    return v;
  };

  const paths = () => {
    const ns = `/v2/metadefs/namespaces/${namespace}`;
    return [
      `${ns}`,
      `${ns}?resource_type=OS::Glance::Image`,
      `${ns}?resource_type=OS::Nova::Flavor`,
      `${ns}/objects`,
      `${ns}/objects/Limits`,
      `${ns}/properties`,
      `${ns}/properties/console`,
      `${ns}/tags`,
      `${ns}/tags/test`,
      `${ns}/resource_types`,
    ];
  };

  it("shows the namespace and each of its parts with Glance's statuses, shapes and values", async () => {
    for (const path of paths()) {
      const [glance, berth] = await Promise.all([send('glance', 'GET', path), send('berth', 'GET', path)]);
      assert.equal(glance.status, 200, `Glance: ${path}`);
      assert.equal(berth.status, 200, path);
      assert.deepEqual(shape(berth.json), shape(glance.json), `shape of ${path}`);
      assert.deepEqual(comparable(berth.json), comparable(glance.json), `values of ${path}`);
    }
  });

  it('lists it as Glance does, filtered by resource type', async () => {
    for (const query of ['resource_types=OS::Nova::Flavor', 'resource_types=OS::Glance::Image&visibility=public']) {
      const [glance, berth] = await Promise.all([
        send('glance', 'GET', `/v2/metadefs/namespaces?${query}`),
        send('berth', 'GET', `/v2/metadefs/namespaces?${query}`),
      ]);
      const mine = (a: { json: any }) => a.json.namespaces.filter((n: { namespace: string }) => n.namespace === namespace);
      assert.equal(berth.status, glance.status, query);
      assert.equal(mine(glance).length, 1, `Glance lists ${namespace} for ${query}`);
      assert.deepEqual(shape(berth.json), shape(glance.json), query);
      assert.deepEqual(comparable(mine(berth)), comparable(mine(glance)), query);
      assert.equal(berth.json.first, glance.json.first, query);
    }
  });

  it("publishes the metadefs schemas with Glance's names, members, required members and links", async () => {
    for (const name of ['namespace', 'namespaces', 'object', 'objects', 'property', 'properties', 'tag', 'tags', 'resource_type', 'resource_types']) {
      const path = `/v2/schemas/metadefs/${name}`;
      const [glance, berth] = await Promise.all([send('glance', 'GET', path), send('berth', 'GET', path)]);
      assert.equal(glance.status, 200, `Glance: ${path}`);
      assert.equal(berth.status, 200, path);
      const outline = (s: any) => ({
        name: s.name,
        members: Object.keys(s.properties ?? {}).sort(),
        required: s.required,
        additional: s.additionalProperties,
        links: s.links,
        definitions: Object.keys(s.definitions ?? {}).sort(),
        // A list's members: the item's own members, or a map's definition's.
        item: Object.keys(
          Object.values(s.properties ?? {})
            .map((p: any) => p?.items?.properties ?? p?.additionalProperties?.properties)
            .find(Boolean) ?? {},
        ).sort(),
      });
      assert.deepEqual(outline(berth.json), outline(glance.json), path);
    }
  });

  it('answers 404 for what the namespace does not hold, as Glance does', async () => {
    const ns = `/v2/metadefs/namespaces/${namespace}`;
    for (const path of [`${ns}/objects/Nope`, `${ns}/properties/nope`, `${ns}/tags/nope`, `${ns}x`]) {
      const [glance, berth] = await Promise.all([send('glance', 'GET', path), send('berth', 'GET', path)]);
      assert.equal(glance.status, 404, `Glance: ${path}`);
      assert.equal(berth.status, 404, path);
    }
  });
});
