import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { BerthError } from '../../common/errors.js';
import { readBody } from '../../common/http-client.js';
import type { RegistryClient } from '../../glance-bridge/registry/types.js';
import { buildImage, type BuiltImage } from '../fakes/image-builder.js';

/** What the suite needs from a RegistryClient and the registry it reads. */
export interface RegistryClientHarness {
  client: RegistryClient;
  /** `HOST[:PORT]` of the registry under test. */
  registry: string;
  /** Makes `image` available as `repository:tag` (and by its digest) on the registry. */
  publish(repository: string, tag: string, image: BuiltImage): Promise<void>;
  /** `HOST:PORT` where no registry answers. */
  unreachable: string;
  cleanup(): Promise<void>;
}

async function rejectsWith(p: Promise<unknown>, code: string, status: number): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof BerthError, `expected a BerthError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.equal(err.status, status);
    return true;
  });
}

/**
 * One suite for every RegistryClient, so the fake registry the importer's tests use answers as a
 * registry does: exact manifest bytes and media type by tag and by digest, blobs by digest within
 * their repository, and the not-found and unreachable codes.
 */
export function registryClientConformance(name: string, makeHarness: () => Promise<RegistryClientHarness>): void {
  describe(`RegistryClient conformance: ${name}`, function () {
    this.timeout(60_000);
    let h: RegistryClientHarness;
    let image: BuiltImage;
    let repository: string;
    const tag = 'v1';
    const repo = () => ({ registry: h.registry, repository });

    before(async () => {
      h = await makeHarness();
      image = await buildImage();
      repository = `conformance/app-${randomUUID().slice(0, 8)}`;
      await h.publish(repository, tag, image);
    });
    after(async () => {
      await h?.cleanup();
    });

    it('pings a registry, and an address where none answers is REGISTRY_UNREACHABLE (503)', async () => {
      await h.client.ping(h.registry);
      await rejectsWith(h.client.ping(h.unreachable), 'REGISTRY_UNREACHABLE', 503);
      await rejectsWith(h.client.fetchManifest({ registry: h.unreachable, repository }, tag), 'REGISTRY_UNREACHABLE', 503);
    });

    it('fetches the manifest bytes as published, by tag and by digest, with their media type', async () => {
      for (const reference of [tag, image.manifestDigest]) {
        const m = await h.client.fetchManifest(repo(), reference);
        assert.deepEqual(m.bytes, image.manifest, reference);
        assert.equal(m.contentType, image.mediaType);
        if (m.headerDigest !== undefined) assert.equal(m.headerDigest, image.manifestDigest);
      }
    });

    it('answers MANIFEST_NOT_FOUND (404) for an unknown tag, digest or repository', async () => {
      await rejectsWith(h.client.fetchManifest(repo(), 'absent'), 'MANIFEST_NOT_FOUND', 404);
      await rejectsWith(h.client.fetchManifest(repo(), `sha256:${'0'.repeat(64)}`), 'MANIFEST_NOT_FOUND', 404);
      await rejectsWith(h.client.fetchManifest({ registry: h.registry, repository: `${repository}-absent` }, tag), 'MANIFEST_NOT_FOUND', 404);
    });

    it('streams each blob the manifest names, as published', async () => {
      for (const blob of [image.config, ...image.layers]) {
        const fetched = await h.client.fetchBlob(repo(), blob.descriptor.digest);
        assert.ok(fetched.size === null || fetched.size === blob.bytes.length);
        assert.deepEqual(await readBody(fetched.stream), blob.bytes);
      }
    });

    it('answers BLOB_NOT_FOUND (404) for an unknown blob, and for a blob of another repository', async () => {
      await rejectsWith(h.client.fetchBlob(repo(), `sha256:${'0'.repeat(64)}`), 'BLOB_NOT_FOUND', 404);
      await rejectsWith(
        h.client.fetchBlob({ registry: h.registry, repository: `${repository}-absent` }, image.config.descriptor.digest),
        'BLOB_NOT_FOUND',
        404,
      );
    });
  });
}
