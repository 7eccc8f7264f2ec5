import type { Importer } from './import/importer.js';
import type { BlobStore } from './store/blobs.js';
import type { ImageRepository } from './store/images.js';
import type { ImageUploader } from './import/upload.js';

/**
 * Removes blobs no live image refers to (deleted images' layers, and blobs of failed imports no
 * other image shares). Blobs being fetched right now count as referenced: an import records its
 * blob list before fetching, but a web-download into an image deleted meanwhile still writes.
 * An upload learns its digest only at the end, so each candidate is checked again, in this order,
 * against the uploads in progress and then the database: an upload leaves the pending set only
 * after its row is written.
 */
export async function collectUnreferencedBlobs(deps: {
  images: ImageRepository;
  blobs: BlobStore;
  importer: Importer;
  uploader?: ImageUploader;
}): Promise<string[]> {
  const keep = await deps.images.referencedDigests();
  return deps.blobs.collectGarbage(async (digest) => {
    if (keep.has(digest) || deps.importer.fetching().has(digest)) return true;
    if (deps.uploader?.pending().has(digest)) return true;
    return deps.images.isReferenced(digest);
  });
}
