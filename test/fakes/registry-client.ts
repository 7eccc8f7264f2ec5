import { Readable } from 'node:stream';
import { imageError } from '../../glance-bridge/errors.js';
import type { FetchedBlob, FetchedManifest, RegistryClient, RepositoryRef } from '../../glance-bridge/registry/types.js';
import type { BuiltImage } from './image-builder.js';

interface StoredManifest { bytes: Buffer; contentType: string }

/**
 * An in-memory registry behind the RegistryClient contract. Like the HTTP client it neither
 * parses manifests nor verifies blobs, so tests can serve broken content on purpose.
 */
export class FakeRegistryClient implements RegistryClient {
  readonly manifests = new Map<string, StoredManifest>();
  readonly blobs = new Map<string, Buffer>();
  readonly blobFetches: string[] = [];
  readonly manifestFetches: string[] = [];
  readonly registries = new Set<string>();
  /** While set, blob bodies wait for it: lets a test hold fetches open. */
  gate: Promise<void> | null = null;
  /** Registries whose every call fails with REGISTRY_UNREACHABLE. */
  readonly down = new Set<string>();

  private key(repo: RepositoryRef, reference: string): string {
    return `${repo.registry}/${repo.repository}@${reference}`;
  }

  addManifest(repo: RepositoryRef, reference: string, bytes: Buffer, contentType: string): void {
    this.registries.add(repo.registry);
    this.manifests.set(this.key(repo, reference), { bytes, contentType });
  }

  /** Publishes an image under `tag` and its digest, with its blobs. */
  addImage(repo: RepositoryRef, tag: string | null, image: BuiltImage): void {
    for (const blob of [image.config, ...image.layers]) this.blobs.set(blob.descriptor.digest, blob.bytes);
    this.addManifest(repo, image.manifestDigest, image.manifest, image.mediaType);
    if (tag) this.addManifest(repo, tag, image.manifest, image.mediaType);
  }

  private check(registry: string): void {
    if (this.down.has(registry) || !this.registries.has(registry)) {
      throw imageError('REGISTRY_UNREACHABLE', `registry ${registry} unreachable (fake)`, { registry });
    }
  }

  async ping(registry: string): Promise<void> {
    this.check(registry);
  }

  async fetchManifest(repo: RepositoryRef, reference: string): Promise<FetchedManifest> {
    this.check(repo.registry);
    this.manifestFetches.push(reference);
    const found = this.manifests.get(this.key(repo, reference));
    if (!found) throw imageError('MANIFEST_NOT_FOUND', `${repo.repository}:${reference} not found (fake)`);
    return { bytes: found.bytes, contentType: found.contentType };
  }

  async fetchBlob(repo: RepositoryRef, digest: string): Promise<FetchedBlob> {
    this.check(repo.registry);
    this.blobFetches.push(digest);
    const bytes = this.blobs.get(digest);
    if (!bytes) throw imageError('BLOB_NOT_FOUND', `blob ${digest} not found (fake)`);
    const gate = this.gate;
    async function* body(): AsyncGenerator<Buffer> {
      if (gate) await gate;
      yield bytes!;
    }
    return { stream: Readable.from(body()), size: bytes.length };
  }
}
