import type { Readable } from 'node:stream';

/**
 * The bridge's view of container registries (Registry HTTP API v2 / OCI distribution spec,
 * https://github.com/opencontainers/distribution-spec/blob/main/spec.md).
 *
 * A RegistryClient is transport only: it finds the registry, authenticates, follows redirects
 * and enforces size caps. It does not interpret manifests and does not verify digests; that is
 * done once, above it (./resolve.ts for manifests, the blob store for blobs), so that the fake in
 * test/fakes/ and the HTTP implementation cannot disagree about what is valid.
 */

/** Where a repository lives: `registry` is `HOST[:PORT]` as written in references. */
export interface RepositoryRef {
  registry: string;
  repository: string;
}

/** A parsed image reference; at least one of tag or digest is set. */
export interface ImageReference extends RepositoryRef {
  tag?: string;
  digest?: string;
}

/** An OCI content descriptor, as found in manifests and indexes. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface FetchedManifest {
  /** The exact bytes received: digests are computed over these, never over re-serialised JSON. */
  bytes: Buffer;
  /** Content-Type as the registry sent it (may be empty or wrong; the body decides). */
  contentType: string;
  /** Docker-Content-Digest header, when the registry sent one. */
  headerDigest?: string;
}

export interface FetchedBlob {
  stream: Readable;
  /** Content-Length, when known. */
  size: number | null;
}

export interface RegistryClient {
  /**
   * Checks that `registry` speaks Registry API v2 (`GET /v2/` answers 200, or 401 with an auth
   * challenge). Throws REGISTRY_UNREACHABLE when it cannot be reached or is not a registry.
   */
  ping(registry: string): Promise<void>;

  /**
   * Fetches the manifest or index `reference` (a tag or a digest) of `repo`, offering the Docker
   * schema 2 manifest and manifest list and the OCI manifest and index media types. Throws
   * MANIFEST_NOT_FOUND (no such repository or reference), MANIFEST_TOO_LARGE, REGISTRY_AUTH_FAILED,
   * REGISTRY_UNREACHABLE or REGISTRY_ERROR (retryable server-side failures). Read-only; repeatable.
   */
  fetchManifest(repo: RepositoryRef, reference: string): Promise<FetchedManifest>;

  /**
   * Opens blob `digest` of `repo` for reading, following redirects to blob storage. The caller
   * must consume or destroy the stream, and must verify size and digest. Throws BLOB_NOT_FOUND,
   * BLOB_TOO_LARGE (when the declared length is over the cap), REGISTRY_AUTH_FAILED,
   * REGISTRY_UNREACHABLE or REGISTRY_ERROR.
   */
  fetchBlob(repo: RepositoryRef, digest: string): Promise<FetchedBlob>;
}
