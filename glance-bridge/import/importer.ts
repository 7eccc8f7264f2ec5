import { createCounted, type HeldBytes } from '../policy/quotas.js';
import { BerthError, describeError, invalidInput } from '../../common/errors.js';
import { SingleFlight } from '../../common/single-flight.js';
import type { ImportProgress } from '../client/types.js';
import { hasCode, imageError } from '../errors.js';
import { checkDeclaredSize } from './limits.js';
import { formatReference, parseReference } from '../registry/reference.js';
import { resolveImage, type ResolvedImage } from '../registry/resolve.js';
import type { ImageRecord } from '../store/types.js';
import type { Visibility } from '../store/models.js';
import { DeferredHashes } from './deferred-hashes.js';
import { blobsOf, ImageFetch } from './fetch-image.js';
import type { ImporterDeps } from './importer-options.js';
import { ImportSlots } from './import-slots.js';

export type { ImporterDeps, ImporterOptions } from './importer-options.js';

/**
 * Who an import is for. The HTTP API passes the caller's project and the visibility it may set
 * (policy/glance-policy.ts); the defaults (the service's default project, public) are for the service's own
 * callers: tools and benchmarks that import straight through this class.
 */
export interface ImportRequest {
  name?: string;
  owner?: string;
  visibility?: Visibility;
}

export interface StartedImport {
  image: ImageRecord;
  /** Settles with the image once active or killed (null if it was deleted meanwhile); never rejects. */
  done: Promise<ImageRecord | null>;
}

/** Property naming why an import failed; the HTTP client turns it into IMAGE_IMPORT_FAILED. */
export const IMPORT_ERROR_PROPERTY = 'berth_import_error';

/**
 * Registry → store. An image becomes `active` only once every blob is stored and verified and the
 * served archive's size and hashes are recorded (or, with `activeBeforeHashes`, its size, the
 * hashes following: deferred-hashes.ts); any failure leaves it `killed` with the reason in
 * `berth_import_error`. Imports are keyed by owner and manifest digest: a project importing
 * content it already holds (active or being imported) gets its own image back. Another project's
 * image of the same content is never returned, whatever its visibility: the caller gets a record
 * of its own, as Glance makes one per create, and only the blobs are shared. Returning it would
 * tell the caller that the content exists and hand it an image it may not read, and the first
 * importer would own everyone's copy (and could delete or change it under them).
 */
export class Importer {
  private readonly imageFetch: ImageFetch;
  private readonly slots: ImportSlots;
  /**
   * The background job of each image being imported. A plain map, not a SingleFlight: a job is
   * never joined (one image id is launched once, its state transition sees to that), drain needs
   * every job, and the entry goes as the import settles, before the job reads the image back, so
   * that recoverInterrupted never takes a settled import for a running one.
   */
  private readonly running = new Map<string, Promise<ImageRecord | null>>();
  /** Claims under way, keyed by owner and manifest digest. */
  private readonly claiming = new SingleFlight<ImageRecord>();

  /** Hashes of images that turned active before them (`activeBeforeHashes`). */
  readonly hashes: DeferredHashes;

  constructor(private readonly deps: ImporterDeps) {
    this.hashes = new DeferredHashes(deps);
    this.imageFetch = new ImageFetch(deps, this.hashes);
    this.slots = new ImportSlots(deps.images, deps.options);
  }

  /**
   * Resolves `source` now (so a bad reference fails the call) and fetches in the background.
   */
  async startImport(source: string, opts: ImportRequest = {}): Promise<StartedImport> {
    const ref = parseReference(source);
    const resolved = await resolveImage(this.deps.registry, ref, this.deps.options.platform);
    checkDeclaredSize(resolved, this.deps.options);
    const owner = opts.owner ?? this.deps.options.defaultProject;
    const key = `${owner}\n${resolved.digest}`;
    // Concurrent requests for the same content and owner share one claim, so they get one image.
    const image = await this.claiming.run(key, () => {
      const name = opts.name ?? `${ref.repository}:${ref.tag ?? ref.digest}`;
      return this.claim(resolved, name, owner, opts.visibility ?? 'public');
    });
    return { image, done: this.running.get(image.id) ?? Promise.resolve(image) };
  }

  /** startImport, then waits; IMAGE_IMPORT_FAILED if the image ends up killed. */
  async importImage(source: string, opts: ImportRequest = {}): Promise<ImageRecord> {
    const started = await this.startImport(source, opts);
    const image = await started.done;
    if (image?.status !== 'active') {
      const why = image ? (image.properties[IMPORT_ERROR_PROPERTY] ?? image.status) : 'the image was deleted';
      throw imageError('IMAGE_IMPORT_FAILED', `import of ${source} failed: ${why}`, { image_id: started.image.id });
    }
    return image;
  }

  /** Glance's web-download import into an existing queued image; the work runs in the background. */
  async importInto(imageId: string, source: string): Promise<StartedImport> {
    const ref = parseReference(source);
    const image = await this.deps.images.require(imageId);
    if (image.container_format !== null && image.container_format !== 'docker') {
      throw invalidInput(`a docker:// import needs container_format docker, image ${imageId} has ${image.container_format}`);
    }
    if (image.status !== 'queued') {
      throw imageError('IMAGE_INVALID_STATE', `image ${imageId} is ${image.status}; only queued images can be imported into`, {
        image_id: imageId,
        status: image.status,
      });
    }
    const slot = this.slots.take(image.owner ?? this.deps.options.defaultProject);
    let importing: ImageRecord;
    try {
      importing = await this.deps.images.transition(imageId, 'importing', {
        container_format: 'docker',
        disk_format: 'raw',
        properties: { ...image.properties, docker_image: formatReference(ref) },
      });
    } catch (err) {
      slot();
      throw err;
    }
    let held: HeldBytes | null = null;
    const done = this.launch(
      imageId,
      async () => {
        const resolved = await resolveImage(this.deps.registry, ref, this.deps.options.platform);
        checkDeclaredSize(resolved, this.deps.options);
        const current = await this.deps.images.require(imageId);
        // The image record exists already (counted at its creation); its bytes are reserved here.
        held = await this.slots.reserveDeclared(current.owner ?? this.deps.options.defaultProject, resolved);
        await this.deps.images.update(imageId, 'importing', { properties: { ...current.properties, ...this.digestProperties(resolved) } });
        await this.deps.images.setBlobs(imageId, blobsOf(resolved));
        return resolved;
      },
      () => {
        held?.release();
        slot();
      },
    );
    return { image: importing, done };
  }

  progress(imageId: string): ImportProgress | null {
    const p = this.imageFetch.progress(imageId);
    return p ? { image_id: imageId, status: 'importing', bytes_done: p.done, bytes_total: p.total } : null;
  }

  /** Digests running imports are writing: blob GC must keep them. */
  fetching(): Set<string> {
    return this.imageFetch.fetching();
  }

  /** Imports left `importing` by a previous process cannot finish: mark them killed. */
  async recoverInterrupted(): Promise<number> {
    const stale = (await this.deps.images.findByStatus('importing')).filter((i) => !this.running.has(i.id));
    for (const image of stale) await this.kill(image.id, 'interrupted by a restart of the image service');
    return stale.length;
  }

  /** Waits for every running import to settle (for shutdown and tests). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.running.values()]);
  }

  private digestProperties(resolved: ResolvedImage): Record<string, string> {
    return { docker_digest: resolved.digest, ...(resolved.indexDigest ? { docker_index_digest: resolved.indexDigest } : {}) };
  }

  /** The import counts against `owner`'s concurrent-import limit: imports go into the caller's project. */
  private async claim(resolved: ResolvedImage, name: string, owner: string, visibility: Visibility): Promise<ImageRecord> {
    const existing = await this.deps.images.findByDockerDigest(resolved.digest, ['active', 'importing'], owner);
    // An image the project already imported (or is importing) costs it nothing more.
    if (existing) return existing;
    const slot = this.slots.take(owner);
    let held: HeldBytes | null = null;
    let image: ImageRecord;
    try {
      held = await this.slots.reserveDeclared(owner, resolved);
      image = await createCounted(this.deps.images, owner, this.deps.options.quotas, () =>
        this.deps.images.create({
          name,
          status: 'importing',
          visibility,
          container_format: 'docker',
          disk_format: 'raw',
          owner,
          properties: { docker_image: formatReference(resolved.reference), ...this.digestProperties(resolved) },
        }),
      );
      // Recorded before any fetch, so blob GC sees these digests as referenced from now on.
      await this.deps.images.setBlobs(image.id, blobsOf(resolved));
    } catch (err) {
      held?.release();
      slot();
      throw err;
    }
    this.launch(
      image.id,
      async () => resolved,
      () => {
        held?.release();
        slot();
      },
    );
    return image;
  }

  /** `settled`: runs once the image is active (its size recorded) or killed. */
  private launch(imageId: string, prepare: () => Promise<ResolvedImage>, settled: () => void = () => undefined): Promise<ImageRecord | null> {
    const job = (async (): Promise<ImageRecord | null> => {
      try {
        await this.imageFetch.fetchAndActivate(imageId, await prepare());
      } catch (err) {
        await this.kill(imageId, err).catch((killErr: unknown) =>
          this.deps.log.error({ image_id: imageId, err: killErr }, 'could not mark failed import killed'),
        );
      } finally {
        settled();
        this.imageFetch.forget(imageId);
        this.running.delete(imageId);
      }
      return this.deps.images.get(imageId).catch(() => null);
    })();
    this.running.set(imageId, job);
    return job;
  }

  private async kill(imageId: string, reason: unknown): Promise<void> {
    const message =
      reason instanceof BerthError ? `${reason.code}: ${reason.message}` : typeof reason === 'string' ? reason : 'internal error (see the image service log)';
    this.deps.log.warn({ image_id: imageId, err: reason instanceof Error ? reason : undefined, reason: describeError(reason) }, 'image import failed');
    try {
      const current = await this.deps.images.require(imageId);
      await this.deps.images.transition(imageId, 'killed', { properties: { ...current.properties, [IMPORT_ERROR_PROPERTY]: message } });
    } catch (err) {
      // Deleted while importing: nothing left to mark.
      if (!hasCode(err, 'IMAGE_NOT_FOUND') && !hasCode(err, 'IMAGE_INVALID_STATE')) throw err;
    }
  }
}
