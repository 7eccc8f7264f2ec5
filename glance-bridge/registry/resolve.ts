import { createHash } from 'node:crypto';
import { imageError } from '../errors.js';
import { parseManifest, selectPlatform, type ManifestDocument } from './manifest.js';
import type { Descriptor, ImageReference, Platform, RegistryClient } from './types.js';

/** What an import needs to know about one image, whatever kind of manifest named it. */
export interface ResolvedImage {
  reference: ImageReference;
  /** Digest of the single-platform image manifest: the image's content identity. */
  digest: string;
  /** Digest of the index or manifest list the tag pointed to, when there was one. */
  indexDigest?: string;
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
  /** The image manifest's bytes as received: the store serves them to hosts unchanged. */
  manifestBytes: Buffer;
}

const sha256 = (bytes: Buffer): string => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/**
 * Fetches `reference` and checks the bytes against `expected` (the digest the caller asked for or
 * an index named) and against the registry's Docker-Content-Digest header when it is sha256.
 */
async function fetchVerified(
  client: RegistryClient,
  ref: ImageReference,
  reference: string,
  expected?: string,
): Promise<{ digest: string; doc: ManifestDocument; bytes: Buffer }> {
  const fetched = await client.fetchManifest(ref, reference);
  const digest = sha256(fetched.bytes);
  if (expected && digest !== expected) {
    throw imageError('DIGEST_MISMATCH', `manifest ${expected} of ${ref.repository} hashes to ${digest}`, { expected, actual: digest });
  }
  if (fetched.headerDigest?.startsWith('sha256:') && fetched.headerDigest !== digest) {
    throw imageError('DIGEST_MISMATCH', `registry says manifest ${reference} is ${fetched.headerDigest} but it hashes to ${digest}`, {
      expected: fetched.headerDigest,
      actual: digest,
    });
  }
  return { digest, doc: parseManifest(fetched.bytes, fetched.contentType), bytes: fetched.bytes };
}

/**
 * Resolves a reference to one image manifest: pings the registry, fetches the manifest, and for an
 * index or manifest list picks `platform` and fetches that manifest by digest. Nested indexes are
 * refused (no registry publishes them for images).
 */
export async function resolveImage(client: RegistryClient, ref: ImageReference, platform: Platform): Promise<ResolvedImage> {
  await client.ping(ref.registry);
  const top = await fetchVerified(client, ref, ref.digest ?? ref.tag!, ref.digest);
  if (top.doc.kind === 'image') {
    return { reference: ref, digest: top.digest, mediaType: top.doc.mediaType, config: top.doc.config, layers: top.doc.layers, manifestBytes: top.bytes };
  }
  const chosen = selectPlatform(top.doc.manifests, platform);
  const inner = await fetchVerified(client, ref, chosen.digest, chosen.digest);
  if (inner.doc.kind !== 'image') {
    throw imageError('MANIFEST_UNSUPPORTED', `index entry ${chosen.digest} is itself an index`, { digest: chosen.digest });
  }
  return {
    reference: ref,
    digest: inner.digest,
    indexDigest: top.digest,
    mediaType: inner.doc.mediaType,
    config: inner.doc.config,
    layers: inner.doc.layers,
    manifestBytes: inner.bytes,
  };
}
