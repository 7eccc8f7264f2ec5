import { imageError } from '../errors.js';
import type { ResolvedImage } from '../registry/resolve.js';

/** The import limits of `[registry]`; absent ones take DEFAULT_LIMITS (the options' defaults). */
export interface DeclaredLimits {
  maxBlobBytes: number;
  maxLayers?: number;
  maxImageBytes?: number;
}

export const DEFAULT_LIMITS = { maxLayers: 128, maxImageBytes: 64 * 1024 ** 3, scan: { maxUncompressedBytes: 64 * 1024 ** 3, maxRatio: 100 } };

/**
 * Refuses, before anything is fetched or recorded, an image whose manifest declares more layers
 * or more bytes than the limits: a hostile manifest costs one small request, not a disk.
 */
export function checkDeclaredSize(resolved: ResolvedImage, opts: DeclaredLimits): void {
  const maxLayers = opts.maxLayers ?? DEFAULT_LIMITS.maxLayers;
  const maxImage = opts.maxImageBytes ?? DEFAULT_LIMITS.maxImageBytes;
  if (resolved.layers.length > maxLayers) {
    throw imageError(
      'MANIFEST_TOO_LARGE',
      `image ${resolved.digest} has ${resolved.layers.length} layers; at most ${maxLayers} are accepted ([registry] max_layers)`,
      { layers: resolved.layers.length, limit: maxLayers },
    );
  }
  for (const d of [resolved.config, ...resolved.layers]) {
    if (d.size > opts.maxBlobBytes)
      throw imageError('BLOB_TOO_LARGE', `blob ${d.digest} declares ${d.size} bytes, over the ${opts.maxBlobBytes} byte limit`, {
        digest: d.digest,
        limit: opts.maxBlobBytes,
      });
  }
  const total = [resolved.config, ...resolved.layers].reduce((sum, d) => sum + d.size, 0);
  if (total > maxImage) {
    throw imageError('MANIFEST_TOO_LARGE', `image ${resolved.digest} declares ${total} bytes; at most ${maxImage} are accepted ([registry] max_image_bytes)`, {
      size: total,
      limit: maxImage,
    });
  }
}
