import assert from 'node:assert/strict';
import type { Sequelize } from 'sequelize';
import { listedFor } from '../../../glance-bridge/policy/access.js';
import { parseListQuery, VISIBILITIES } from '../../../glance-bridge/api/validate.js';
import { RegistryNames } from '../../../glance-bridge/registry-endpoint/names.js';
import type { ImageRepository } from '../../../glance-bridge/store/images.js';
import type { ImageRecord } from '../../../glance-bridge/store/types.js';
import type { ListQuery, ListScope } from '../../../glance-bridge/store/listing.js';
import { MEMBER_STATUSES, MemberRepository } from '../../../glance-bridge/store/members.js';

/** A store with images, and a way to count the rows its queries bring back. */
export interface ListingStore {
  db: Sequelize;
  images: ImageRepository;
  rowsRead(): number;
  reset(): void;
}

/** Counts every row Sequelize materialises from a find, on any model of `db`. */
export function countRows(db: Sequelize): { rowsRead(): number; reset(): void } {
  let n = 0;
  db.addHook('afterFind', (result: unknown) => {
    n += Array.isArray(result) ? result.length : result ? 1 : 0;
  });
  return {
    rowsRead: () => n,
    reset: () => {
      n = 0;
    },
  };
}

async function everyPage(images: ImageRepository, q: ListQuery): Promise<ImageRecord[]> {
  const all: ImageRecord[] = [];
  for (let marker: string | undefined; ;) {
    const page = await images.list({ ...q, ...(marker ? { marker } : {}) });
    all.push(...page.images);
    if (!page.more) return all;
    marker = page.images.at(-1)!.id;
  }
}

/**
 * The listing and name-lookup cases both databases must pass: results equal to the rules of
 * policy/access.ts (listedFor) and Glance's filters, read with at most a page of rows.
 */
export function listingCases(open: () => Promise<ListingStore>, close: (s: ListingStore) => Promise<void>): void {
  let s: ListingStore;
  beforeEach(async () => {
    s = await open();
  });
  afterEach(async () => {
    await close(s);
  });

  it('reads one page of rows, not the whole store, for a filtered listing (tags, properties, size, scope)', async () => {
    for (let i = 0; i < 40; i++)
      await s.images.create({ name: `noise-${i}`, owner: `p${i % 5}`, visibility: 'private', properties: { os_distro: 'other' }, tags: ['n'] });
    for (let i = 0; i < 6; i++) {
      const img = await s.images.create({
        name: `hit-${i}`,
        owner: 'alice',
        visibility: 'shared',
        properties: { os_distro: 'debian', 'we"ird.key': 'v' },
        tags: ['x', 'y'],
      });
      await s.images.update(img.id, 'queued', { size: 100 + i });
    }
    const scope: ListScope = { project: 'alice', admin: false, visibility: undefined, memberStatus: 'accepted' };
    const q = { ...parseListQuery({ os_distro: 'debian', 'we"ird.key': 'v', tag: ['x', 'y'], size_min: '101', sort: 'name:asc', limit: '2' }), scope };
    s.reset();
    const first = await s.images.list(q);
    assert.deepEqual(
      first.images.map((i) => i.name),
      ['hit-1', 'hit-2'],
    );
    assert.equal(first.more, true);
    assert.ok(s.rowsRead() <= 3, `a page of 2 read ${s.rowsRead()} rows`);
    s.reset();
    const second = await s.images.list({ ...q, marker: first.images[1]!.id });
    assert.deepEqual(
      second.images.map((i) => i.name),
      ['hit-3', 'hit-4'],
    );
    assert.ok(s.rowsRead() <= 4, `the next page read ${s.rowsRead()} rows`);
    assert.deepEqual(
      (await everyPage(s.images, q)).map((i) => i.name),
      ['hit-1', 'hit-2', 'hit-3', 'hit-4', 'hit-5'],
    );
    assert.deepEqual((await s.images.list({ ...q, scope: { ...scope, project: 'bob' } })).images, [], 'shared images of others are not listed');
    assert.deepEqual(await s.images.usage('alice'), { count: 6, bytes: 615 }, 'usage is one aggregate, numbers on both dialects');
  });

  it('lists exactly what access.ts listedFor allows, for every visibility, membership, filter and role', async () => {
    const members = new MemberRepository(s.db);
    const mine: ImageRecord[] = [];
    for (const owner of ['alice', 'bob']) {
      for (const visibility of VISIBILITIES) mine.push(await s.images.create({ name: `${owner}-${visibility}`, owner, visibility }));
    }
    // alice's memberships on bob's shared images, one per status, and one image without any.
    const memberships = new Map<string, (typeof MEMBER_STATUSES)[number]>();
    for (const status of MEMBER_STATUSES) {
      const img = await s.images.create({ name: `bob-shared-${status}`, owner: 'bob', visibility: 'shared' });
      mine.push(img);
      await members.add(img.id, 'alice');
      if (status !== 'pending') await members.setStatus(img.id, 'alice', status);
      memberships.set(img.id, status);
    }
    mine.push(await s.images.create({ name: 'ownerless-public', owner: null, visibility: 'public' }));
    for (const admin of [false, true]) {
      for (const visibility of [undefined, 'all', ...VISIBILITIES] as const) {
        for (const memberStatus of ['all', ...MEMBER_STATUSES] as const) {
          const filters = visibility && visibility !== 'all' ? { visibility } : {};
          const got = (await s.images.list({ filters, limit: 1000, scope: { project: 'alice', admin, visibility, memberStatus } })).images
            .map((i) => i.name)
            .sort();
          const accept = listedFor({ project: 'alice', admin }, memberships, visibility, memberStatus);
          const want = mine
            .filter((i) => accept(i) && (!filters.visibility || i.visibility === filters.visibility))
            .map((i) => i.name)
            .sort();
          assert.deepEqual(got, want, JSON.stringify({ admin, visibility, memberStatus }));
        }
      }
    }
  });

  it('sorts with nulls first ascending and last descending, and pages through ties by id', async () => {
    for (const [name, size] of [
      ['a', 3],
      ['b', null],
      ['c', 1],
      ['d', 3],
      ['e', null],
    ] as const) {
      const img = await s.images.create({ name, owner: 'alice', visibility: 'private' });
      if (size !== null) await s.images.update(img.id, 'queued', { size });
    }
    const scope: ListScope = { project: 'alice', admin: false, visibility: undefined, memberStatus: 'accepted' };
    const names = async (sort: string) => (await everyPage(s.images, { ...parseListQuery({ sort, limit: '1' }), scope })).map((i) => i.name);
    const asc = await names('size:asc,name:asc');
    assert.deepEqual(asc, ['b', 'e', 'c', 'a', 'd']);
    assert.deepEqual(await names('size:desc,name:desc'), [...asc].reverse());
    assert.equal((await names('size:asc')).length, 5, 'ties on size are paged by id, none lost or repeated');
    const byDate = (await everyPage(s.images, { ...parseListQuery({ limit: '2' }), scope })).map((i) => i.name);
    assert.deepEqual([...byDate].sort(), ['a', 'b', 'c', 'd', 'e'], 'the default order (created_at desc, a date marker) pages through all');
  });

  it("filters Glance's core columns in SQL: size and its range, in:, protected, min_ram ranges, times, checksum", async () => {
    const made: ImageRecord[] = [];
    for (let i = 0; i < 4; i++) {
      const img = await s.images.create({ name: `c${i}`, owner: 'alice', visibility: 'private', min_ram: 100 * i, protected: i === 1 });
      made.push(await s.images.update(img.id, 'queued', { size: 10 * i, checksum: `${i}`.repeat(32) }));
    }
    const names = async (query: Record<string, string>) => (await everyPage(s.images, parseListQuery({ sort: 'name:asc', ...query }))).map((i) => i.name);
    assert.deepEqual(await names({ size: '20' }), ['c2']);
    assert.deepEqual(await names({ size: 'x' }), []);
    assert.deepEqual(await names({ size_min: '10', size_max: '20' }), ['c1', 'c2']);
    assert.deepEqual(await names({ name: 'in:c0,"c3",nope' }), ['c0', 'c3']);
    assert.deepEqual(await names({ id: `in:${made[1]!.id},${made[2]!.id}` }), ['c1', 'c2']);
    assert.deepEqual(await names({ protected: 'true' }), ['c1']);
    assert.deepEqual(await names({ min_ram_min: '150', min_ram_max: '250' }), ['c2']);
    assert.deepEqual(await names({ checksum: '3'.repeat(32) }), ['c3']);
    const at = made[2]!.created_at.toISOString();
    assert.deepEqual(await names({ created_at: `gte:${new Date(Date.now() - 3600_000).toISOString()}` }), ['c0', 'c1', 'c2', 'c3']);
    assert.deepEqual(await names({ created_at: `gt:${new Date(Date.now() + 3600_000).toISOString()}` }), []);
    assert.ok((await names({ created_at: `lte:${at}` })).includes('c2'), 'lte includes the instant itself');
  });

  it("looks a registry name up with one indexed query, reading only that name's images", async () => {
    for (let i = 0; i < 30; i++) {
      const img = await s.images.create({ name: `up-${i}`, owner: 'alice', visibility: 'public', status: 'active' });
      assert.equal(img.status, 'active');
    }
    const older = await s.images.create({ name: 'app-v1', status: 'active', properties: { docker_image: 'registry.test:5000/team/app:v1' } });
    const newer = await s.images.create({ name: 'app-v2', status: 'active', properties: { docker_image: 'registry.test:5000/team/app:v2' } });
    await s.images.create({ name: 'other', status: 'active', properties: { docker_image: 'registry.test:5000/team/other:v1' } });
    await s.images.create({ name: 'importing', status: 'importing', properties: { docker_image: 'registry.test:5000/team/app:v3' } });
    // Same creation time is possible on a fast machine: the newest-first order then falls back to id.
    const names = new RegistryNames(s.images);
    s.reset();
    const found = await names.imagesNamed('team/app');
    assert.deepEqual(new Set(found.map((i) => i.id)), new Set([older.id, newer.id]));
    assert.ok(s.rowsRead() <= 2, `the lookup read ${s.rowsRead()} rows`);
    assert.equal(names.pick('team/app', found, 'v2')?.id, newer.id);
    assert.deepEqual(await names.imagesNamed('team/none'), []);
  });
}
