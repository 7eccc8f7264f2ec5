import { BerthError, describeError } from '../common/errors.js';
import type { GlanceImage, ImageService } from '../glance-bridge/client/types.js';
import { agentError } from './errors.js';
import type { ContainerRuntime } from './runtime/types.js';

const IMAGE_ID_RE = /^sha256:[0-9a-f]{64}$/;

/** Hooks for counting; a shared fetch counts once. */
export interface ImageCacheEvents {
  cacheHit(): void;
  fetched(result: 'loaded' | 'failed'): void;
}

/**
 * Makes Glance images present in the runtime. The host's cache is keyed by the Docker image id
 * the store records (`docker_image_id`, the config digest), never by name or tag, so a re-tagged
 * or re-pushed image can never be mistaken for another.
 */
export class ImageCache {
  private readonly inFlight = new Map<string, Promise<string>>();

  constructor(private readonly images: ImageService, private readonly runtime: ContainerRuntime, private readonly events?: ImageCacheEvents) {}

  /**
   * Resolves to the Docker image id of Glance image `glanceId` once it is present. Concurrent
   * calls for one image share a single download.
   */
  ensureImage(glanceId: string): Promise<string> {
    const running = this.inFlight.get(glanceId);
    if (running) return running;
    const p = this.fetch(glanceId).finally(() => this.inFlight.delete(glanceId));
    this.inFlight.set(glanceId, p);
    return p;
  }

  private async fetch(glanceId: string): Promise<string> {
    const image = await this.describe(glanceId);
    const imageId = usableImageId(image);
    if (await this.runtime.hasImage(imageId)) {
      this.events?.cacheHit();
      return imageId;
    }
    try {
      await this.runtime.loadImage(await this.download(glanceId));
      if (!(await this.runtime.hasImage(imageId))) {
        throw agentError('IMAGE_FETCH_FAILED', `image ${glanceId} loaded but its content does not match docker_image_id ${imageId}`, { image_id: glanceId });
      }
    } catch (err) {
      this.events?.fetched('failed');
      throw err;
    }
    this.events?.fetched('loaded');
    return imageId;
  }

  private async describe(glanceId: string): Promise<GlanceImage> {
    let image: GlanceImage | null;
    try {
      image = await this.images.getImage(glanceId);
    } catch (err) {
      throw storeFailure(err, glanceId, 'describe');
    }
    if (!image) throw agentError('IMAGE_NOT_FOUND', `image ${glanceId} not found in the image service`, { image_id: glanceId });
    return image;
  }

  private async download(glanceId: string): Promise<NodeJS.ReadableStream> {
    try {
      return await this.images.downloadImage(glanceId);
    } catch (err) {
      throw storeFailure(err, glanceId, 'download');
    }
  }
}

function usableImageId(image: GlanceImage): string {
  const fail = (why: string): BerthError => agentError('IMAGE_FETCH_FAILED', `image ${image.id} cannot boot an instance: ${why}`, { image_id: image.id });
  if (image.status !== 'active') throw fail(`its status is ${image.status}, not active`);
  if (image.container_format !== 'docker') throw fail(`its container_format is ${String(image.container_format)}, not docker`);
  const id = image.docker_image_id;
  if (typeof id !== 'string' || !IMAGE_ID_RE.test(id)) throw fail('it has no docker_image_id property of the form sha256:<64 hex digits>');
  return id;
}

/** Unreachable stores stay retryable; a 404 means the image is gone; anything else is a failed fetch. */
function storeFailure(err: unknown, glanceId: string, what: string): BerthError {
  if (err instanceof BerthError && err.status === 404) return agentError('IMAGE_NOT_FOUND', `image ${glanceId} not found in the image service`, { image_id: glanceId });
  if (err instanceof BerthError && err.code === 'SERVICE_UNREACHABLE') return err;
  return agentError('IMAGE_FETCH_FAILED', `could not ${what} image ${glanceId}: ${describeError(err)}`, { image_id: glanceId }, err);
}
