import { MediaType } from '../registry/manifest.js';
import type { ResolvedImage } from '../registry/resolve.js';
import { sha256Digest } from '../store/blobs.js';
import type { BlobEntry } from '../store/types.js';
import { TAR_LAYER } from './zstd.js';

/** Docker's own name for an uncompressed layer, for schema 2 manifests. */
const DOCKER_TAR_LAYER = 'application/vnd.docker.image.rootfs.diff.tar';

export interface ServedManifest {
  bytes: Buffer;
  digest: string;
  mediaType: string;
}

/**
 * The manifest hosts pull from the store's registry endpoint. It must name the blobs the store
 * holds: normally that is the manifest as received (its bytes, so its digest is `docker_digest`);
 * when zstd layers were converted to tar (dockerd 20.10 cannot read zstd), the same document with
 * those layer descriptors replaced, which has a digest of its own.
 */
export function servedManifest(resolved: ResolvedImage, stored: readonly BlobEntry[]): ServedManifest {
  const changed = resolved.layers.some((l, i) => stored[i]?.digest !== l.digest);
  if (!changed) return { bytes: resolved.manifestBytes, digest: resolved.digest, mediaType: resolved.mediaType };
  const doc = JSON.parse(resolved.manifestBytes.toString('utf8')) as { layers: unknown[] } & Record<string, unknown>;
  const tarType = resolved.mediaType === MediaType.ociManifest ? TAR_LAYER : DOCKER_TAR_LAYER;
  doc.layers = resolved.layers.map((original, i) => {
    const entry = stored[i]!;
    return entry.digest === original.digest ? original : { mediaType: tarType, digest: entry.digest, size: entry.size };
  });
  const bytes = Buffer.from(JSON.stringify(doc, null, 3));
  return { bytes, digest: sha256Digest(bytes), mediaType: resolved.mediaType };
}
