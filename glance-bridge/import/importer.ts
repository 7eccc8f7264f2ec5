import { Readable } from 'node:stream';
import { createCounted, reserveBytes, type HeldBytes, type ProjectQuotas } from '../policy/quotas.js';
import { BerthError, describeError, invalidInput } from '../../common/errors.js';
import { readBody } from '../../common/http-client.js';
import type { Logger } from '../../common/log.js';
import { digestArchive } from '../archive/build.js';
import { ArchiveHasher } from '../archive/hash.js';
import { BlobFetcher, forEachLimited } from './blob-fetcher.js';
import { MANIFEST_DIGEST_PROPERTY, type ImportProgress } from '../client/types.js';
import { hasCode, imageError } from '../errors.js';
import type { ScanLimits } from './layer-scan.js';
import { checkDeclaredSize, DEFAULT_LIMITS } from './limits.js';
import { formatReference, parseReference } from '../registry/reference.js';
import { resolveImage, type ResolvedImage } from '../registry/resolve.js';
import type { Descriptor, Platform, RegistryClient } from '../registry/types.js';
import { isDigest, type BlobStore } from '../store/blobs.js';
import type { ImageRepository } from '../store/images.js';
import type { BlobEntry, ImageBlobs, ImageRecord } from '../store/types.js';
import { MemberRepository } from '../store/members.js';
import type { Visibility } from '../store/models.js';
import { canRead } from '../policy/access.js';
import { servedManifest } from './served-manifest.js';
import { decompressZstdBlob, TAR_LAYER, ZSTD_LAYER } from './zstd.js';

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
const CONFIG_LIMIT = 16 * 1024 * 1024;
const HASH_IN_WORKERS_FROM = 32 * 1024 * 1024;

function blobsOf(resolved: ResolvedImage): ImageBlobs {
  const entry = (d: Descriptor) => ({ digest: d.digest, media_type: d.mediaType, size: d.size });
  return { config: entry(resolved.config), layers: resolved.layers.map(entry) };
}

/**
 * Registry → store. An image becomes `active` only once every blob is stored and verified and the
 * served archive's size and hashes are recorded; any failure leaves it `killed` with the reason in
 * `berth_import_error`. Imports are keyed by owner and manifest digest: a project importing
 * content it already holds (active or being imported) gets its own image back. Another project's
 * image of the same content is never returned, whatever its visibility: the caller gets a record
 * of its own, as Glance makes one per create, and only the blobs are shared. Returning it would
 * tell the caller that the content exists and hand it an image it may not read, and the first
 * importer would own everyone's copy (and could delete or change it under them).
 */
export class Importer {
  private readonly fetcher: BlobFetcher;
  private readonly running = new Map<string, Promise<ImageRecord | null>>();
  private readonly claiming = new Map<string, Promise<ImageRecord>>();
  private readonly progressOf = new Map<string, { done: number; total: number }>();
  /** Import slots taken, per project that asked (takeSlot). */
  private readonly slots = new Map<string, number>();
  /** diff_ids of zstd layers being converted, kept from GC until their image records them. */
  private readonly converting = new Map<string, number>();

  private readonly members: MemberRepository;

  constructor(private readonly deps: ImporterDeps) {
    this.fetcher = new BlobFetcher(deps.blobs, deps.registry);
    this.members = new MemberRepository(deps.images.db);
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
    let claim = this.claiming.get(key);
    if (!claim) {
      const name = opts.name ?? `${ref.repository}:${ref.tag ?? ref.digest}`;
      claim = this.claim(resolved, name, owner, opts.visibility ?? 'public').finally(() => this.claiming.delete(key));
      this.claiming.set(key, claim);
    }
    const image = await claim;
    return { image, done: this.running.get(image.id) ?? Promise.resolve(image) };
  }

  /** startImport, then waits; IMAGE_IMPORT_FAILED if the image ends up killed. */
  async importImage(source: string, opts: ImportRequest = {}): Promise<ImageRecord> {
    const started = await this.startImport(source, opts);
    const image = await started.done;
    if (image?.status !== 'active') {
      const why = image ? image.properties[IMPORT_ERROR_PROPERTY] ?? image.status : 'the image was deleted';
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
      throw imageError('IMAGE_INVALID_STATE', `image ${imageId} is ${image.status}; only queued images can be imported into`, { image_id: imageId, status: image.status });
    }
    const slot = this.takeSlot(image.owner ?? this.deps.options.defaultProject);
    let importing: ImageRecord;
    try {
      importing = await this.deps.images.transition(imageId, 'importing', {
        container_format: 'docker', disk_format: 'raw',
        properties: { ...image.properties, docker_image: formatReference(ref) },
      });
    } catch (err) {
      slot();
      throw err;
    }
    let held: HeldBytes | null = null;
    const done = this.launch(imageId, async () => {
      const resolved = await resolveImage(this.deps.registry, ref, this.deps.options.platform);
      checkDeclaredSize(resolved, this.deps.options);
      const current = await this.deps.images.require(imageId);
      // The image record exists already (counted at its creation); its bytes are reserved here.
      held = await this.reserveDeclared(current.owner ?? this.deps.options.defaultProject, resolved);
      await this.deps.images.update(imageId, 'importing', { properties: { ...current.properties, ...this.digestProperties(resolved) } });
      await this.deps.images.setBlobs(imageId, blobsOf(resolved));
      return resolved;
    }, () => { held?.release(); slot(); });
    return { image: importing, done };
  }

  progress(imageId: string): ImportProgress | null {
    const p = this.progressOf.get(imageId);
    return p ? { image_id: imageId, status: 'importing', bytes_done: p.done, bytes_total: p.total } : null;
  }

  /** Digests running imports are writing: blob GC must keep them. */
  fetching(): Set<string> {
    return new Set([...this.fetcher.fetching(), ...this.converting.keys()]);
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

  /**
   * Takes one import slot for `project` or refuses with 413, Glance's answer to a quota overrun
   * (its image_count_uploading limit). Checked and taken in one synchronous step, so concurrent
   * requests cannot all pass; returns the release. Imports answered by an existing image take none.
   */
  private takeSlot(project: string): () => void {
    const { maxConcurrentImports: all, maxConcurrentImportsPerProject: perProject } = this.deps.options;
    const total = [...this.slots.values()].reduce((sum, n) => sum + n, 0);
    const mine = this.slots.get(project) ?? 0;
    if (perProject && mine >= perProject) {
      throw imageError('QUOTA_EXCEEDED', `Resource image_count_uploading is over limit of ${perProject} due to current usage ${mine} and delta 1: at most ${perProject} imports of one project run at once ([image_store] max_concurrent_imports_per_project); retry once one has finished`,
        { project, limit: perProject, usage: mine, option: 'max_concurrent_imports_per_project' });
    }
    if (all && total >= all) {
      throw imageError('QUOTA_EXCEEDED', `The image service is running its limit of ${all} concurrent imports ([image_store] max_concurrent_imports); retry once one has finished`,
        { limit: all, usage: total, option: 'max_concurrent_imports' });
    }
    this.slots.set(project, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.slots.get(project) ?? 1) - 1;
      if (left > 0) this.slots.set(project, left);
      else this.slots.delete(project);
    };
  }

  /**
   * Reserves, before anything is fetched, the bytes the manifest declares against the owner's byte
   * quota (refused if they do not fit); held until the import settles and its size is recorded.
   */
  private async reserveDeclared(owner: string, resolved: ResolvedImage): Promise<HeldBytes> {
    const declared = [resolved.config, ...resolved.layers].reduce((sum, d) => sum + d.size, 0);
    return reserveBytes(this.deps.images, owner, this.deps.options.quotas, declared);
  }

  private digestProperties(resolved: ResolvedImage): Record<string, string> {
    return { docker_digest: resolved.digest, ...(resolved.indexDigest ? { docker_index_digest: resolved.indexDigest } : {}) };
  }

  /** The import counts against `owner`'s concurrent-import limit: imports go into the caller's project. */
  private async claim(resolved: ResolvedImage, name: string, owner: string, visibility: Visibility): Promise<ImageRecord> {
    const existing = await this.deps.images.findByDockerDigest(resolved.digest, ['active', 'importing'], owner);
    // An image the project already imported (or is importing) costs it nothing more.
    if (existing) return existing;
    const slot = this.takeSlot(owner);
    let held: HeldBytes | null = null;
    let image: ImageRecord;
    try {
      held = await this.reserveDeclared(owner, resolved);
      image = await createCounted(this.deps.images, owner, this.deps.options.quotas, () => this.deps.images.create({
        name, status: 'importing', visibility, container_format: 'docker', disk_format: 'raw', owner,
        properties: { docker_image: formatReference(resolved.reference), ...this.digestProperties(resolved) },
      }));
      // Recorded before any fetch, so blob GC sees these digests as referenced from now on.
      await this.deps.images.setBlobs(image.id, blobsOf(resolved));
    } catch (err) {
      held?.release();
      slot();
      throw err;
    }
    this.launch(image.id, async () => resolved, () => { held?.release(); slot(); });
    return image;
  }

  /** `settled`: runs once the image is active (its size recorded) or killed. */
  private launch(imageId: string, prepare: () => Promise<ResolvedImage>, settled: () => void = () => undefined): Promise<ImageRecord | null> {
    const job = (async (): Promise<ImageRecord | null> => {
      try {
        await this.fetchAndActivate(imageId, await prepare());
      } catch (err) {
        await this.kill(imageId, err).catch((killErr: unknown) => this.deps.log.error({ image_id: imageId, err: killErr }, 'could not mark failed import killed'));
      } finally {
        settled();
        this.progressOf.delete(imageId);
        this.running.delete(imageId);
      }
      return this.deps.images.get(imageId).catch(() => null);
    })();
    this.running.set(imageId, job);
    return job;
  }

  private async fetchAndActivate(imageId: string, resolved: ResolvedImage): Promise<void> {
    const unique = [...new Map([resolved.config, ...resolved.layers].map((d) => [d.digest, d])).values()];
    const progress = { done: 0, total: unique.reduce((sum, d) => sum + d.size, 0) };
    this.progressOf.set(imageId, progress);
    const scan = this.deps.options.scan === false ? undefined : this.deps.options.scan ?? DEFAULT_LIMITS.scan;
    const owner = (await this.deps.images.require(imageId)).owner;
    const mayReuse = (digest: string) => this.mayReuse(imageId, owner, digest);
    const fetchOpts = { maxBlobBytes: this.deps.options.maxBlobBytes, ...(scan ? { scan } : {}), onBytes: (n: number) => { progress.done += n; }, mayReuse, ...(owner !== null ? { party: owner } : {}) };
    let hasher: ArchiveHasher | null = null;
    const fetchOne = async (d: Descriptor): Promise<void> => {
      const how = await this.fetcher.ensure(resolved.reference, d, fetchOpts);
      if (how === 'present' || how === 'shared') progress.done += d.size;
      hasher?.ready(d.digest);
    };
    // The config first: a config that cannot describe these layers fails before any layer is fetched.
    await fetchOne(resolved.config);
    const diffIds = await this.readDiffIds(resolved.config, resolved.layers.length);
    const converted: string[] = [];
    // The archive is known now unless a zstd layer will be served as its converted tar.
    const inWorkers = progress.total >= (this.deps.options.hashInWorkersFrom ?? HASH_IN_WORKERS_FROM);
    if (inWorkers && !resolved.layers.some((l) => l.mediaType === ZSTD_LAYER)) hasher = new ArchiveHasher(this.deps.blobs.root, blobsOf(resolved), [resolved.config.digest]);
    try {
      const served = new Map<string, BlobEntry>();
      const layers = [...new Map(resolved.layers.map((d, i) => [d.digest, { d, diffId: diffIds[i]! }])).values()];
      await forEachLimited(layers, this.deps.options.maxParallelLayers, async ({ d, diffId }) => {
        if (d.mediaType !== ZSTD_LAYER) {
          await fetchOne(d);
          served.set(d.digest, { digest: d.digest, media_type: d.mediaType, size: d.size });
          return;
        }
        this.converting.set(diffId, (this.converting.get(diffId) ?? 0) + 1);
        converted.push(diffId);
        served.set(d.digest, await this.zstdAsTar(d, diffId, fetchOne, progress, scan, mayReuse));
      });
      const blobs: ImageBlobs = { config: blobsOf(resolved).config, layers: resolved.layers.map((l) => served.get(l.digest)!) };
      if (converted.length) await this.deps.images.setBlobs(imageId, blobs);
      const manifest = servedManifest(resolved, blobs.layers);
      // The row first, so blob GC keeps the manifest blob from the moment it exists.
      await this.deps.images.setManifest(imageId, { digest: manifest.digest, media_type: manifest.mediaType, size: manifest.bytes.length });
      await this.deps.blobs.put(manifest.digest, Readable.from([manifest.bytes]), { expectedSize: manifest.bytes.length });
      if (inWorkers) hasher ??= new ArchiveHasher(this.deps.blobs.root, blobs, [blobs.config.digest, ...blobs.layers.map((l) => l.digest)]);
      const archive = hasher ? await hasher.digest() : await digestArchive(this.deps.blobs, blobs);
      const current = await this.deps.images.require(imageId);
      await this.deps.images.transition(imageId, 'active', {
        size: archive.size, checksum: archive.md5, os_hash_algo: 'sha512', os_hash_value: archive.sha512,
        properties: { ...current.properties, docker_image_id: resolved.config.digest, [MANIFEST_DIGEST_PROPERTY]: manifest.digest },
      });
      this.deps.log.info({ image_id: imageId, docker_image: current.properties.docker_image, docker_digest: resolved.digest, size: archive.size }, 'image imported');
    } finally {
      await hasher?.close();
      for (const digest of converted) {
        const left = (this.converting.get(digest) ?? 1) - 1;
        if (left > 0) this.converting.set(digest, left);
        else this.converting.delete(digest);
      }
    }
  }

  /**
   * Serves a zstd layer as its plain tar, stored under its diff_id. When that tar is already
   * stored (another image shared the layer), the compressed blob is not even fetched. The
   * compressed blob is not kept referenced: GC reclaims it.
   */
  private async zstdAsTar(d: Descriptor, diffId: string, fetchOne: (d: Descriptor) => Promise<void>, progress: { done: number }, scan: ScanLimits | undefined,
    mayReuse: (digest: string) => Promise<boolean>): Promise<BlobEntry> {
    const stored = await this.deps.blobs.size(diffId);
    // Converted again unless the project may use the stored tar (BlobFetcher.prove says why).
    if (stored !== null && await mayReuse(diffId)) {
      progress.done += d.size;
      return { digest: diffId, media_type: TAR_LAYER, size: stored };
    }
    await fetchOne(d);
    const put = await decompressZstdBlob(this.deps.blobs, d.digest, (scan ?? DEFAULT_LIMITS.scan).maxUncompressedBytes, {
      ...(scan ? { scan } : {}), ...(this.deps.options.zstdCommand ? { command: this.deps.options.zstdCommand } : {}),
    });
    if (put.digest !== diffId) {
      if (put.created) await this.deps.blobs.remove(put.digest);
      throw imageError('DIGEST_MISMATCH', `layer ${d.digest} decompresses to ${put.digest}, but the config says its diff_id is ${diffId}`, { digest: d.digest, expected: diffId, actual: put.digest });
    }
    return { digest: diffId, media_type: TAR_LAYER, size: put.size };
  }

  /**
   * Whether `owner` may use the stored blob `digest` without its source proving it has the bytes:
   * when an active image it may read (its own, public, community, or shared with it) holds it.
   * Anything else (another project's private image, a blob no image holds) is fetched again. An
   * image still importing does not count, not even the project's own: its blobs may be the very
   * ones not yet proved, and two imports would vouch for each other. Downloads under way for the
   * same project are shared all the same (BlobFetcher's `party`).
   */
  private async mayReuse(imageId: string, owner: string | null, digest: string): Promise<boolean> {
    if (owner === null) return false;
    for (const id of await this.deps.images.imagesWithBlob(digest)) {
      if (id === imageId) continue;
      const image = await this.deps.images.get(id);
      if (image?.status !== 'active') continue;
      const membership = image.visibility === 'shared' ? (await this.members.get(id, owner))?.status ?? null : null;
      if (canRead(image, { project: owner, admin: false }, membership)) return true;
    }
    return false;
  }

  /** The config must be an image config with one diff_id per layer, or `docker load` refuses it. */
  private async readDiffIds(config: Descriptor, layers: number): Promise<string[]> {
    const bytes = await readBody(await this.deps.blobs.open(config.digest), CONFIG_LIMIT);
    let doc: { rootfs?: { type?: unknown; diff_ids?: unknown } };
    try {
      doc = JSON.parse(bytes.toString('utf8')) as typeof doc;
    } catch {
      throw imageError('IMAGE_CONFIG_INVALID', `image config ${config.digest} is not JSON`);
    }
    const diffIds = doc.rootfs?.diff_ids;
    if (doc.rootfs?.type !== 'layers' || !Array.isArray(diffIds) || diffIds.length !== layers || !diffIds.every(isDigest)) {
      throw imageError('IMAGE_CONFIG_INVALID', `image config ${config.digest} does not list one sha256 diff_id per layer (${layers} layers)`, { layers });
    }
    return diffIds as string[];
  }

  private async kill(imageId: string, reason: unknown): Promise<void> {
    const message = reason instanceof BerthError ? `${reason.code}: ${reason.message}` : typeof reason === 'string' ? reason : 'internal error (see the image service log)';
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
