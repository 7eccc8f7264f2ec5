import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { BerthError } from '../../../common/errors.js';
import { StorageReservations } from '../../../glance-bridge/store/reservations.js';
import { buildImage } from '../../fakes/image-builder.js';
import { inProcessRequest, serveInProcess, type InProcessServer } from '../../support/in-process.js';
import { appOver, call } from './api-server.js';
import { createHarness, REPO, SOURCE, type Harness } from './harness.js';

const ALICE = { 'x-project-id': 'alice' };

/**
 * PUT of `size` bytes with Content-Length, sent in two halves: the second only once `release`
 * settles, so several uploads are surely in flight together. Resolves to the HTTP status.
 */
function heldUpload(base: string, id: string, size: number, release: Promise<void>, chunked = false): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = inProcessRequest(`${base}/v2/images/${id}/file`, {
      method: 'PUT',
      headers: { ...ALICE, 'content-type': 'application/octet-stream', ...(chunked ? {} : { 'content-length': String(size) }) },
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    // A refusal may come before the body is sent; the server then drops the rest.
    req.on('error', (err) => (req.writableEnded ? undefined : reject(err)));
    req.write(Buffer.alloc(Math.floor(size / 2)));
    void release.then(() => {
      if (!req.destroyed) req.end(Buffer.alloc(size - Math.floor(size / 2)));
    });
  });
}

describe('glance-bridge quota races: concurrent uploads and imports share one quota', () => {
  describe('StorageReservations', () => {
    it('counts recorded bytes and running reservations, and frees them on release', async () => {
      let recorded = 100;
      const ledger = new StorageReservations(async () => recorded);
      const a = await ledger.reserve('p', 500, 1000);
      assert.ok('reservation' in a);
      assert.deepEqual(await ledger.reserve('p', 401, 1000), { remaining: 400 });
      assert.ok('reservation' in (await ledger.reserve('other', 900, 1000)), 'per project');
      // The upload finishes: its size is recorded, then its reservation released.
      recorded += 500;
      a.reservation.release();
      a.reservation.release();
      assert.equal(ledger.reserved('p'), 0);
      assert.deepEqual(await ledger.reserve('p', 401, 1000), { remaining: 400 });
      assert.ok('reservation' in (await ledger.reserve('p', 400, 1000)));
    });

    it('grows a reservation up to what remains, never past it', async () => {
      const ledger = new StorageReservations(async () => 0);
      const granted = await ledger.reserve('p', 0, 1000);
      assert.ok('reservation' in granted);
      const r = granted.reservation;
      assert.ok('reservation' in (await ledger.extend(r, 100, 600, 1000)));
      assert.equal(r.bytes, 600);
      assert.ok('reservation' in (await ledger.reserve('p', 300, 1000)));
      assert.ok('reservation' in (await ledger.extend(r, 650, 2000, 1000)));
      assert.equal(r.bytes, 700, 'the preferred size is cut to what remains');
      assert.deepEqual(await ledger.extend(r, 701, 701, 1000), { remaining: 0 });
    });

    it('decides concurrent reservations one at a time: of four that each fit, only those that fit together pass', async () => {
      // A slow usage query is where unserialised checks interleave.
      const ledger = new StorageReservations(async () => {
        await delay(10);
        return 0;
      });
      const grants = await Promise.all([1, 2, 3, 4].map(() => ledger.reserve('p', 400, 1000)));
      assert.equal(grants.filter((g) => 'reservation' in g).length, 2);
      assert.equal(ledger.reserved('p'), 800);
    });
  });

  describe('over HTTP', () => {
    let h: Harness;
    let server: InProcessServer;
    let base: string;

    async function start(quotas: { maxImages: number; maxBytes: number }): Promise<void> {
      h = await createHarness();
      const app = appOver(h, { quotas });
      server = serveInProcess(app.callback());
      base = server.base;
    }
    afterEach(async () => {
      await server.close();
      await h.close();
    });

    const create = async (name: string) => {
      const res = await call(base, 'POST', '/v2/images', { name, container_format: 'bare', disk_format: 'raw' }, ALICE);
      assert.equal(res.status, 201, JSON.stringify(res.json));
      return res.json.id as string;
    };

    it('four concurrent uploads of 400 bytes under a 1000-byte quota: two are stored, two refused with 413', async () => {
      await start({ maxImages: 0, maxBytes: 1000 });
      const ids = await Promise.all([1, 2, 3, 4].map((n) => create(`race-${n}`)));
      let go!: () => void;
      const release = new Promise<void>((resolve) => {
        go = resolve;
      });
      const uploads = ids.map((id) => heldUpload(base, id, 400, release));
      await delay(200);
      go();
      const statuses = await Promise.all(uploads);
      assert.deepEqual([...statuses].sort(), [204, 204, 413, 413]);
      assert.ok((await h.images.usage('alice')).bytes <= 1000, 'the quota holds');
      assert.equal(h.images.reservations.reserved('alice'), 0, 'every reservation released');
      // Refused before any data was stored: those images are still queued and take data later.
      const refused = ids.filter((_, i) => statuses[i] === 413);
      for (const id of refused) assert.equal((await call(base, 'GET', `/v2/images/${id}`, undefined, ALICE)).json.status, 'queued');
    });

    it('concurrent chunked uploads (no Content-Length) reserve as data arrives and cannot pass the quota together', async () => {
      await start({ maxImages: 0, maxBytes: 1000 });
      const ids = await Promise.all([1, 2, 3].map((n) => create(`chunked-${n}`)));
      let go!: () => void;
      const release = new Promise<void>((resolve) => {
        go = resolve;
      });
      const uploads = ids.map((id) => heldUpload(base, id, 400, release, true));
      await delay(200);
      go();
      const statuses = await Promise.all(uploads);
      assert.ok(
        statuses.every((s) => s === 204 || s === 413),
        JSON.stringify(statuses),
      );
      assert.ok(statuses.includes(413), 'at least one is refused');
      assert.ok((await h.images.usage('alice')).bytes <= 1000, 'the quota holds');
      assert.equal(h.images.reservations.reserved('alice'), 0);
    });

    it('a failed upload gives its reservation back', async () => {
      await start({ maxImages: 0, maxBytes: 1000 });
      const id = await create('fails');
      const res = await call(base, 'PUT', `/v2/images/${id}/file`, Buffer.alloc(900), { ...ALICE, 'content-type': 'application/json' });
      assert.equal(res.status, 415);
      const docker = await call(base, 'POST', '/v2/images', { name: 'docker', container_format: 'docker', disk_format: 'raw' }, ALICE);
      assert.equal(
        (await call(base, 'PUT', `/v2/images/${docker.json.id as string}/file`, Buffer.alloc(900), ALICE)).status,
        400,
        'not a docker save archive: killed',
      );
      assert.equal(h.images.reservations.reserved('alice'), 0);
      assert.equal((await call(base, 'PUT', `/v2/images/${id}/file`, Buffer.alloc(1000), ALICE)).status, 204, 'the whole quota is free again');
    });

    it('concurrent creates at the image-count quota cannot both pass', async () => {
      await start({ maxImages: 3, maxBytes: 0 });
      const results = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => call(base, 'POST', '/v2/images', { name: `n${n}` }, ALICE)));
      assert.deepEqual(results.map((r) => r.status).sort(), [201, 201, 201, 413, 413, 413]);
      assert.equal((await h.images.usage('alice')).count, 3);
    });
  });

  describe('imports', () => {
    let h: Harness | undefined;
    let go = (): void => undefined;
    afterEach(async () => {
      go();
      await h?.close();
      h = undefined;
    });

    it('two concurrent imports that each fit the byte quota but not together: the second is refused before any fetch', async () => {
      const one = await buildImage({ layers: [{ 'a.bin': randomBytes(3000) }] });
      const two = await buildImage({ layers: [{ 'b.bin': randomBytes(3000) }] });
      const declared = (img: typeof one) => img.config.descriptor.size + img.layers.reduce((s, l) => s + l.descriptor.size, 0);
      h = await createHarness({ quotas: { maxImages: 0, maxBytes: Math.max(declared(one), declared(two)) + 1000 } });
      h.registry.addImage(REPO, 'v1', one);
      h.registry.addImage(REPO, 'v2', two);
      h.registry.gate = new Promise<void>((resolve) => {
        go = resolve;
      });
      const first = await h.importer.startImport(SOURCE);
      await assert.rejects(
        h.importer.startImport(SOURCE.replace(/:v1$/, ':v2')),
        (e: unknown) => e instanceof BerthError && e.code === 'QUOTA_EXCEEDED' && e.status === 413,
      );
      go();
      assert.equal((await first.done)?.status, 'active');
      assert.equal(h.images.reservations.reserved('berth'), 0, 'released once the size is recorded');
    });
  });
});
