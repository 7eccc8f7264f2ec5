import type { Logger } from '../../common/log.js';
import type { ProjectQuotas } from '../policy/quotas.js';
import type { Platform, RegistryClient } from '../registry/types.js';
import type { BlobStore } from '../store/blobs.js';
import type { ImageRepository } from '../store/images.js';
import type { ScanLimits } from './layer-scan.js';

export interface ImporterOptions {
  defaultProject: string;
  platform: Platform;
  maxParallelLayers: number;
  maxBlobBytes: number;
  /** The zstd executable converting zstd layers (default: `zstd` on PATH). */
  zstdCommand?: string;
  /** Most layers an image may have (`[registry] max_layers`). */
  maxLayers?: number;
  /** Most bytes an image's config and layers may declare in total (`[registry] max_image_bytes`). */
  maxImageBytes?: number;
  /**
   * Limits of the layer scanner (`[registry] max_uncompressed_bytes`, `max_uncompressed_ratio`).
   * false turns the scanner off; only the import benchmark does, to measure what it costs.
   */
  scan?: ScanLimits | false;
  /**
   * Images whose blobs declare at least this many bytes have their archive hashed in worker
   * threads while the layers download (archive/hash.ts); smaller ones once at the end, on the
   * event loop, where starting two threads would cost more than it saves. Default 32 MiB.
   */
  hashInWorkersFrom?: number;
  /**
   * `[image_store] active_before_hashes`: an image hashed in workers (hashInWorkersFrom) turns
   * active once its blobs are stored and verified; the workers start then, and its Glance hashes
   * are recorded when they finish (deferred-hashes.ts). Default false: the workers hash while the
   * layers download, and the image is active only with the hashes known.
   */
  activeBeforeHashes?: boolean;
  /** `[image_store]` project quotas, applied to imports as to uploads; 0 or absent is no limit. */
  quotas?: ProjectQuotas;
  /** `[image_store] max_concurrent_imports`: imports running at once in this service; 0 or absent is no limit. */
  maxConcurrentImports?: number;
  /** `[image_store] max_concurrent_imports_per_project`: imports one project may have running; 0 or absent is no limit. */
  maxConcurrentImportsPerProject?: number;
}

export interface ImporterDeps {
  images: ImageRepository;
  blobs: BlobStore;
  registry: RegistryClient;
  log: Logger;
  options: ImporterOptions;
}
