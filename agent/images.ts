import { BerthError, describeError } from '../common/errors.js';
import { SingleFlight } from '../common/single-flight.js';
import { MANIFEST_DIGEST_PROPERTY, type GlanceImage, type ImageService } from '../glance-bridge/client/types.js';
import { agentError } from './errors.js';
import type { HostImage } from './client/types.js';
import type { ImageRecords } from './image-records.js';
import type { Logger } from '../common/log.js';
import { timeStage } from '../common/stages.js';
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

/** How long what the store said of an image's owner and visibility is relied on before asking again. */
const ACCESS_TTL_MS = 60_000;

/** A Glance image whose content this agent verified is the engine image `imageId`. */
interface Verified {
  imageId: string;
  image: GlanceImage;
  describedAt: number;
}

/**
 * Makes Glance images present in the runtime. The host's cache is keyed by the Docker image id
 * the store records (`docker_image_id`, the config digest), never by name or tag, so a re-tagged
 * or re-pushed image can never be mistaken for another.
 *
 * `docker_image_id` is only a claim of the image's owner (any project can set it on its own
 * image, naming another project's private image already on this host). So an engine image is
 * used for a Glance image only once this agent saw that Glance image's own content become it (it
 * loaded or pulled it and the engine reported that id), and only for a project the image's owner
 * and visibility let read it, as Glance decides (owner, public, community, or a member of a
 * shared image): the agent reads the store as a service and must not lend that reach to a tenant.
 */
export class ImageCache {
  private readonly inFlight = new SingleFlight<Verified>();
  /**
   * Glance ids whose content was verified to be their Docker image id. Content behind a Glance id
   * never changes, so the answer stays true until the engine loses the image; a create that then
   * meets IMAGE_NOT_FOUND calls `forget`. Owner and visibility can change: re-read after ACCESS_TTL_MS.
   */
  private readonly verified = new Map<string, Verified>();

  constructor(
    private readonly images: ImageService,
    private readonly runtime: ContainerRuntime,
    private readonly opts: ImageCacheOptions = {},
  ) {}

  private get events(): ImageCacheEvents | undefined {
    return this.opts.events;
  }
  private get records(): ImageRecords | undefined {
    return this.opts.records;
  }

  /**
   * Resolves to the Docker image id of Glance image `glanceId` once it is present. With
   * `projectId` (an instance's create), IMAGE_NOT_FOUND unless that project may read the image.
   * Concurrent calls for one image share a single download.
   */
  async ensureImage(glanceId: string, projectId?: string): Promise<string> {
    let v = this.verified.get(glanceId);
    if (v) {
      this.events?.cacheHit();
      this.records?.used(v.imageId);
      if (projectId !== undefined && Date.now() - v.describedAt > ACCESS_TTL_MS) {
        v = { ...v, image: await this.describe(glanceId), describedAt: Date.now() };
        this.verified.set(glanceId, v);
      }
    } else {
      v = await this.inFlight.run(glanceId, async () => {
        const fetched = await this.fetch(glanceId);
        this.verified.set(glanceId, fetched);
        return fetched;
      });
    }
    if (projectId !== undefined) await this.requireReadable(v.image, projectId);
    return v.imageId;
  }

  /** Glance's rule (glance-bridge/policy/access.ts canRead): the owner, public, community, or a member of a shared image. */
  private async requireReadable(image: GlanceImage, projectId: string): Promise<void> {
    if (image.owner === projectId || image.visibility === 'public' || image.visibility === 'community') return;
    if (image.visibility === 'shared') {
      let member: unknown;
      try {
        member = await this.images.getMember(image.id, projectId);
      } catch (err) {
        throw storeFailure(err, image.id, 'read the members of');
      }
      if (member) return;
    }
    // What Glance answers a project asking for an image it may not read.
    throw agentError('IMAGE_NOT_FOUND', `image ${image.id} not found in the image service`, { image_id: image.id });
  }

  /** Drops what is remembered about `glanceId`, so the next ensureImage asks the store and the runtime again. */
  forget(glanceId: string): void {
    this.verified.delete(glanceId);
  }

  /** Where Glance image `glanceId` stands on this host; asks the store unless this agent verified it already. */
  async onHost(glanceId: string): Promise<HostImage> {
    const imageId = this.verified.get(glanceId)?.imageId ?? usableImageId(await this.describe(glanceId));
    const info = await this.runtime.inspectImage(imageId);
    return {
      image_id: glanceId,
      present: info !== null,
      docker_image_id: imageId,
      size_bytes: info?.sizeBytes ?? null,
      loaded_by_agent: this.records?.get(imageId) !== undefined,
    };
  }

  private async fetch(glanceId: string): Promise<Verified> {
    const image = await this.describe(glanceId);
    const describedAt = Date.now();
    const imageId = usableImageId(image);
    const present = await this.runtime.hasImage(imageId);
    // Present, and loaded by this agent from this very Glance image: its content was checked then.
    if (present && this.records?.verifiedFor(imageId, glanceId)) {
      this.events?.cacheHit();
      this.records.used(imageId);
      return { imageId, image, describedAt };
    }
    // Otherwise the image's own content is fetched, even when an image of that id is present:
    // what the engine reports it got must be that id. (The engine keeps the layers it has.)
    let how: 'pulled' | 'loaded';
    try {
      const pulled = await this.pull(image);
      how = pulled === null ? 'loaded' : 'pulled';
      const got =
        pulled === null
          ? await timeStage('image', 'load', glanceId, async () => this.runtime.loadImage(await this.download(glanceId)), this.opts.log)
          : [pulled];
      if (!got.includes(imageId) || !(await this.runtime.hasImage(imageId))) {
        throw agentError('IMAGE_FETCH_FAILED', `image ${glanceId} ${how} but its content does not match docker_image_id ${imageId}`, { image_id: glanceId });
      }
      // Recorded only once verified: the record is what later lets the image stand for this Glance
      // image without a fetch. An image that was on the host before is somebody else's to clean up.
      if (!present || this.records?.get(imageId)) await this.records?.loaded(imageId, glanceId);
    } catch (err) {
      this.events?.fetched('failed');
      throw err;
    }
    this.events?.fetched(how);
    return { imageId, image, describedAt };
  }

  /**
   * Pulls an imported image from the image service's registry endpoint, by the digest of the
   * manifest it serves (so nothing but that content can come back); resolves with the engine id of
   * what was pulled. Null when there is nothing to pull from, or the pull failed: the caller then
   * loads the archive. A pull that gave the wrong image is caught by the caller's image id check.
   */
  private async pull(image: GlanceImage): Promise<string | null> {
    const digest = image[MANIFEST_DIGEST_PROPERTY];
    if (!this.opts.registry || typeof digest !== 'string' || !IMAGE_ID_RE.test(digest)) return null;
    const reference = `${this.opts.registry}/berth/${image.id}@${digest}`;
    try {
      return await this.runtime.pullImage(reference);
    } catch (err) {
      if (err instanceof BerthError && err.code === 'RUNTIME_UNAVAILABLE') throw err;
      this.opts.log?.warn(
        { image_id: image.id, reference, err: describeError(err) },
        "pull from the image service's registry endpoint failed; loading the image archive instead",
      );
      return null;
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
  if (err instanceof BerthError && err.status === 404)
    return agentError('IMAGE_NOT_FOUND', `image ${glanceId} not found in the image service`, { image_id: glanceId });
  if (err instanceof BerthError && err.code === 'SERVICE_UNREACHABLE') return err;
  return agentError('IMAGE_FETCH_FAILED', `could not ${what} image ${glanceId}: ${describeError(err)}`, { image_id: glanceId }, err);
}
