import type { Importer } from './importer.js';
import type { BlobStore } from './store/blobs.js';
import type { ImageRepository } from './store/images.js';

/**
 * Removes blobs no live image refers to (deleted images' layers, and blobs of failed imports no
 * other image shares). Blobs being fetched right now count as referenced: an import records its
 * blob list before fetching, but a web-download into an image deleted meanwhile still writes.
 */
export async function collectUnreferencedBlobs(deps: { images: ImageRepository; blobs: BlobStore; importer: Importer }): Promise<string[]> {
  const keep = await deps.images.referencedDigests();
  for (const digest of deps.importer.fetching()) keep.add(digest);
  return deps.blobs.collectGarbage(keep);
}
