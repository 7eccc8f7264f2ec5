import { Readable } from 'node:stream';
import { imageError } from '../../glance-bridge/errors.js';
import type { FetchedBlob, FetchedManifest, RegistryClient, RepositoryRef } from '../../glance-bridge/registry/types.js';
import type { BuiltImage } from './image-builder.js';

interface StoredManifest {
  bytes: Buffer;
  contentType: string;
}

/**
 * An in-memory registry behind the RegistryClient contract. Like the HTTP client it neither
 * parses manifests nor verifies blobs, so tests can serve broken content on purpose.
 */
export class FakeRegistryClient implements RegistryClient {
  readonly manifests = new Map<string, StoredManifest>();
  readonly blobs = new Map<string, Buffer>();
  /** Repositories (`registry/repository`) each blob was pushed to, by digest: a registry serves a blob only in those. */
  readonly blobRepositories = new Map<string, Set<string>>();
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
    for (const digest of blobsNamedBy(bytes)) {
      let repos = this.blobRepositories.get(digest);
      if (!repos) this.blobRepositories.set(digest, (repos = new Set()));
      repos.add(`${repo.registry}/${repo.repository}`);
    }
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
    // A blob no manifest names (set directly by a test) is served in every repository.
    const repos = this.blobRepositories.get(digest);
    if (!bytes || (repos && !repos.has(`${repo.registry}/${repo.repository}`))) throw imageError('BLOB_NOT_FOUND', `blob ${digest} not found (fake)`);
    const gate = this.gate;
    async function* body(): AsyncGenerator<Buffer> {
      if (gate) await gate;
      yield bytes!;
    }
    return { stream: Readable.from(body()), size: bytes.length };
  }
}

/** The config and layer digests an image manifest names (none for an index or unparsable bytes). */
function blobsNamedBy(bytes: Buffer): string[] {
  try {
    const m = JSON.parse(bytes.toString('utf8')) as { config?: { digest?: unknown }; layers?: { digest?: unknown }[] };
    return [m.config?.digest, ...(Array.isArray(m.layers) ? m.layers.map((l) => l?.digest) : [])].filter((d): d is string => typeof d === 'string');
  } catch {
    return [];
  }
}
