import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { silentLogger } from '../../../common/log.js';
import { rotateBackups } from '../../../driver/compute/snapshots.js';
import { createImageClient } from '../../../glance-bridge/client/http.js';
import type { FetchedBlob, RegistryClient, RepositoryRef } from '../../../glance-bridge/registry/types.js';
import { buildImage } from '../../fakes/image-builder.js';
import { REGISTRY, pushImage, realRegistryClient, startTestService } from './helpers.js';

const as = (project: string) => ({ 'x-project-id': project });

async function api(base: string, method: string, path: string, body: unknown, headers: Record<string, string>): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

/** PUT with Content-Length whose second half waits for `release`: the uploads overlap for sure. */
function heldUpload(base: string, id: string, headers: Record<string, string>, size: number, release: Promise<void>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/v2/images/${id}/file`, {
      method: 'PUT',
      headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(size) },
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (err) => (req.writableEnded ? undefined : reject(err)));
    req.write(Buffer.alloc(size / 2));
    void release.then(() => {
      if (!req.destroyed) req.end(Buffer.alloc(size / 2));
    });
  });
}

/** The real registry client, with blob fetches held until `open()`: imports stay running. */
class HeldRegistry implements RegistryClient {
  private gate: Promise<void>;
  private release!: () => void;
  constructor(private readonly inner: RegistryClient) {
    this.gate = new Promise((r) => {
      this.release = r;
    });
  }
  open(): void {
    this.release();
  }
  ping(registry: string) {
    return this.inner.ping(registry);
  }
  fetchManifest(repo: RepositoryRef, reference: string) {
    return this.inner.fetchManifest(repo, reference);
  }
  async fetchBlob(repo: RepositoryRef, digest: string): Promise<FetchedBlob> {
    await this.gate;
    return this.inner.fetchBlob(repo, digest);
  }
}

describe('glance-bridge quotas and limits on the real image service', function () {
  this.timeout(120_000);

  it('four concurrent uploads that each fit max_bytes_per_project but not together: two stored, two refused with 413', async () => {
    const { service, cleanup } = await startTestService(realRegistryClient(), { max_bytes_per_project: 1000 });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 4; i++)
        ids.push((await api(service.url, 'POST', '/v2/images', { name: `u${i}`, container_format: 'bare', disk_format: 'raw' }, as('alice'))).json.id);
      let go!: () => void;
      const release = new Promise<void>((r) => {
        go = r;
      });
      const uploads = ids.map((id) => heldUpload(service.url, id, as('alice'), 400, release));
      await delay(300);
      go();
      assert.deepEqual((await Promise.all(uploads)).sort(), [204, 204, 413, 413]);
      const listed = (await api(service.url, 'GET', '/v2/images?owner=alice&status=active', undefined, as('alice'))).json.images as { size: number }[];
      assert.equal(
        listed.reduce((sum, i) => sum + i.size, 0),
        800,
      );
    } finally {
      await cleanup();
    }
  });

  it("refuses a project's second running import with 413 naming max_concurrent_imports_per_project; another project still imports", async () => {
    const tag = randomUUID().slice(0, 8);
    for (const t of ['a', 'b', 'c']) await pushImage('berth/quota-it', `${tag}-${t}`, await buildImage({ layers: [{ [`${t}.bin`]: randomBytes(512) }] }));
    const registry = new HeldRegistry(realRegistryClient());
    const { service, cleanup } = await startTestService(registry, { max_concurrent_imports_per_project: 1 });
    try {
      const src = (t: string) => `docker://${REGISTRY}/berth/quota-it:${tag}-${t}`;
      const first = await api(service.url, 'POST', '/v2/berth/import', { source: src('a') }, as('alice'));
      assert.equal(first.status, 202);
      const refused = await api(service.url, 'POST', '/v2/berth/import', { source: src('b') }, as('alice'));
      assert.equal(refused.status, 413);
      assert.equal(refused.json.error.code, 'QUOTA_EXCEEDED');
      assert.match(refused.json.error.message, /max_concurrent_imports_per_project/);
      assert.equal((await api(service.url, 'POST', '/v2/berth/import', { source: src('c') }, as('bob'))).status, 202);
      registry.open();
      await service.importer.drain();
      assert.equal((await api(service.url, 'GET', `/v2/images/${first.json.image.id as string}`, undefined, as('alice'))).json.status, 'active');
      assert.equal((await api(service.url, 'POST', '/v2/berth/import', { source: src('b') }, as('alice'))).status, 202, 'the slot is free again');
      await service.importer.drain();
    } finally {
      registry.open();
      await cleanup();
    }
  });

  it("refuses more than 128 custom properties (Glance's image_property_quota default) and values over 255 characters", async () => {
    const { service, cleanup } = await startTestService(realRegistryClient());
    try {
      const props = Object.fromEntries(Array.from({ length: 129 }, (_, i) => [`p${i}`, 'v']));
      const over = await api(service.url, 'POST', '/v2/images', { name: 'many', ...props }, as('alice'));
      assert.equal(over.status, 413);
      assert.match(over.json.error.message, /Attempted: 129, Maximum: 128/);
      assert.equal((await api(service.url, 'POST', '/v2/images', { name: 'long', note: 'x'.repeat(256) }, as('alice'))).status, 400);
    } finally {
      await cleanup();
    }
  });

  it("backup rotation through the image client keeps the project's backups when another project crafts images with the same properties", async () => {
    const { service, cleanup } = await startTestService(realRegistryClient());
    try {
      const uuid = randomUUID();
      const backup = async (project: string, name: string) => {
        const created = await api(
          service.url,
          'POST',
          '/v2/images',
          {
            name,
            container_format: 'bare',
            disk_format: 'raw',
            visibility: 'public',
            image_type: 'backup',
            backup_type: 'daily',
            instance_uuid: uuid,
            // Public, so that every project's listing shows it: making an image public takes an admin.
          },
          { ...as(project), 'x-roles': 'admin' },
        );
        assert.equal(created.status, 201, JSON.stringify(created.json));
        const put = await fetch(`${service.url}/v2/images/${created.json.id as string}/file`, {
          method: 'PUT',
          headers: { ...as(project), 'content-type': 'application/octet-stream' },
          body: new Uint8Array(8),
        });
        assert.equal(put.status, 204);
        await delay(5);
        return created.json.id as string;
      };
      // The image client of the driver acts as the default project, the instance's here.
      const own1 = await backup('berth', 'own-1');
      const own2 = await backup('berth', 'own-2');
      const crafted1 = await backup('mallory', 'crafted-1');
      const crafted2 = await backup('mallory', 'crafted-2');
      const client = createImageClient({ url: service.url });
      const removed = await rotateBackups(client, { uuid, owner: 'berth' }, 'daily', 2, silentLogger());
      assert.deepEqual(removed, []);
      for (const id of [own1, own2, crafted1, crafted2]) assert.equal((await client.getImage(id))?.status, 'active');
      const third = await backup('berth', 'own-3');
      assert.deepEqual(await rotateBackups(client, { uuid, owner: 'berth' }, 'daily', 2, silentLogger()), [own1]);
      assert.equal((await client.getImage(third))?.status, 'active');
    } finally {
      await cleanup();
    }
  });
});
