import { BerthError, describeError } from '../common/errors.js';
import { MANIFEST_DIGEST_PROPERTY, type GlanceImage, type ImageService } from '../glance-bridge/client/types.js';
import { agentError } from './errors.js';
import type { HostImage } from './client/types.js';
import type { ImageRecords } from './image-records.js';
import type { Logger } from '../common/log.js';
import type { ContainerRuntime } from './runtime/types.js';

/** A sha256 digest: Docker image ids and manifest digests alike. */
const IMAGE_ID_RE = /^sha256:[0-9a-f]{64}$/;

/** Hooks for counting; a shared fetch counts once. */
export interface ImageCacheEvents {
  cacheHit(): void;
  fetched(result: 'pulled' | 'loaded' | 'failed'): void;
}


export interface ImageCacheOptions {
  events?: ImageCacheEvents;
  /** Where loads are recorded for the clean-up; without it nothing is recorded. */
  records?: ImageRecords;
  /** `[agent] image_registry`: HOST:PORT of the image service's registry endpoint; absent: always docker load. */
  registry?: string;
  log?: Logger;
}

/**
 * Makes Glance images present in the runtime. The host's cache is keyed by the Docker image id
 * the store records (`docker_image_id`, the config digest), never by name or tag, so a re-tagged
 * or re-pushed image can never be mistaken for another.
 */
export class ImageCache {
  private readonly inFlight = new Map<string, Promise<string>>();
  /**
   * Glance ids already checked against the store and found present in the runtime, with their
   * Docker image id. Content behind a Glance id never changes, so the answer stays true until
   * the engine loses the image; a create that then meets IMAGE_NOT_FOUND calls `forget`.
   */
  private readonly verified = new Map<string, string>();

  constructor(
    private readonly images: ImageService,
    private readonly runtime: ContainerRuntime,
    private readonly opts: ImageCacheOptions = {},
  ) {}

  private get events(): ImageCacheEvents | undefined { return this.opts.events; }
  private get records(): ImageRecords | undefined { return this.opts.records; }

  /**
   * Resolves to the Docker image id of Glance image `glanceId` once it is present. Concurrent
   * calls for one image share a single download.
   */
  ensureImage(glanceId: string): Promise<string> {
    const known = this.verified.get(glanceId);
    if (known) {
      this.events?.cacheHit();
      this.records?.used(known);
      return Promise.resolve(known);
    }
    const running = this.inFlight.get(glanceId);
    if (running) return running;
    const p = this.fetch(glanceId).then((imageId) => {
      this.verified.set(glanceId, imageId);
      return imageId;
    }).finally(() => this.inFlight.delete(glanceId));
    this.inFlight.set(glanceId, p);
    return p;
  }

  /** Drops what is remembered about `glanceId`, so the next ensureImage asks the store and the runtime again. */
  forget(glanceId: string): void {
    this.verified.delete(glanceId);
  }

  /** Where Glance image `glanceId` stands on this host; asks the store unless this agent verified it already. */
  async onHost(glanceId: string): Promise<HostImage> {
    const imageId = this.verified.get(glanceId) ?? usableImageId(await this.describe(glanceId));
    const info = await this.runtime.inspectImage(imageId);
    return { image_id: glanceId, present: info !== null, docker_image_id: imageId, size_bytes: info?.sizeBytes ?? null, loaded_by_agent: this.records?.get(imageId) !== undefined };
  }

  private async fetch(glanceId: string): Promise<string> {
    const image = await this.describe(glanceId);
    const imageId = usableImageId(image);
    if (await this.runtime.hasImage(imageId)) {
      this.events?.cacheHit();
      this.records?.used(imageId);
      return imageId;
    }
    let how: 'pulled' | 'loaded';
    try {
      how = await this.pull(image) ? 'pulled' : 'loaded';
      if (how === 'loaded') await this.runtime.loadImage(await this.download(glanceId));
      // Recorded before the check: whatever the archive put in the engine is this agent's to clean up.
      await this.records?.loaded(imageId, glanceId);
      if (!(await this.runtime.hasImage(imageId))) {
        throw agentError('IMAGE_FETCH_FAILED', `image ${glanceId} ${how} but its content does not match docker_image_id ${imageId}`, { image_id: glanceId });
      }
    } catch (err) {
      this.events?.fetched('failed');
      throw err;
    }
    this.events?.fetched(how);
    return imageId;
  }

  /**
   * Pulls an imported image from the image service's registry endpoint, by the digest of the
   * manifest it serves (so nothing but that content can come back). False when there is nothing
   * to pull from, or the pull failed: the caller then loads the archive. A pull that left the wrong
   * image is caught by the caller's image id check.
   */
  private async pull(image: GlanceImage): Promise<boolean> {
    const digest = image[MANIFEST_DIGEST_PROPERTY];
    if (!this.opts.registry || typeof digest !== 'string' || !IMAGE_ID_RE.test(digest)) return false;
    const reference = `${this.opts.registry}/berth/${image.id}@${digest}`;
    try {
      await this.runtime.pullImage(reference);
      return true;
    } catch (err) {
      if (err instanceof BerthError && err.code === 'RUNTIME_UNAVAILABLE') throw err;
      this.opts.log?.warn({ image_id: image.id, reference, err: describeError(err) }, 'pull from the image service\'s registry endpoint failed; loading the image archive instead');
      return false;
    }
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
