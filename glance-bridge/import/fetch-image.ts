import { Readable } from 'node:stream';
import { readBody } from '../../common/http-client.js';
import type { Logger } from '../../common/log.js';
import { archiveSize, digestArchive } from '../archive/build.js';
import { ArchiveHasher } from '../archive/hash.js';
import { MANIFEST_DIGEST_PROPERTY } from '../client/types.js';
import { imageError } from '../errors.js';
import { canRead } from '../policy/access.js';
import type { ResolvedImage } from '../registry/resolve.js';
import type { Descriptor } from '../registry/types.js';
import { isDigest, type BlobStore } from '../store/blobs.js';
import type { ImageRepository } from '../store/images.js';
import { MemberRepository } from '../store/members.js';
import type { BlobEntry, ImageBlobs } from '../store/types.js';
import { BlobFetcher, forEachLimited } from './blob-fetcher.js';
import type { DeferredHashes } from './deferred-hashes.js';
import type { ImporterDeps, ImporterOptions } from './importer-options.js';
import type { ScanLimits } from './layer-scan.js';
import { DEFAULT_LIMITS } from './limits.js';
import { servedManifest } from './served-manifest.js';
import { decompressZstdBlob, TAR_LAYER, ZSTD_LAYER } from './zstd.js';

const CONFIG_LIMIT = 16 * 1024 * 1024;
export const HASH_IN_WORKERS_FROM = 32 * 1024 * 1024;

/** A stage of one import, logged at debug level with the milliseconds since the import started. */
export type StageLog = (stage: string, fields?: Record<string, unknown>) => void;

/**
 * The per-stage timeline of one import (blob started, body received, scanned, stored; hashes
 * known; active), logged at debug level only, for profiling where an import's time goes; null when
 * debug logging is off, so that the import pays nothing for it.
 */
export function stageLog(log: Logger, imageId: string): StageLog | null {
  if (!log.isLevelEnabled('debug')) return null;
  const start = performance.now();
  return (stage, fields = {}) => log.debug({ image_id: imageId, stage, ms: Math.round(performance.now() - start), ...fields }, 'import stage');
}

export function blobsOf(resolved: ResolvedImage): ImageBlobs {
  const entry = (d: Descriptor) => ({ digest: d.digest, media_type: d.mediaType, size: d.size });
  return { config: entry(resolved.config), layers: resolved.layers.map(entry) };
}

/**
 * The background work of one import: brings an image's blobs from the registry into the store
 * (zstd layers served as their plain tar), then records its served manifest and archive hashes
 * and makes it active. Keeps the progress of each image it fetches, and the digests it is
 * writing, which blob GC must keep.
 */
export class ImageFetch {
  private readonly fetcher: BlobFetcher;
  private readonly members: MemberRepository;
  private readonly images: ImageRepository;
  private readonly blobs: BlobStore;
  private readonly log: Logger;
  private readonly options: ImporterOptions;
  private readonly progressOf = new Map<string, { done: number; total: number }>();
  /** diff_ids of zstd layers being converted, kept from GC until their image records them. */
  private readonly converting = new Map<string, number>();

  constructor(
    deps: ImporterDeps,
    private readonly hashes: DeferredHashes,
  ) {
    this.images = deps.images;
    this.blobs = deps.blobs;
    this.log = deps.log;
    this.options = deps.options;
    this.fetcher = new BlobFetcher(deps.blobs, deps.registry);
    this.members = new MemberRepository(deps.images.db);
  }

  /** Bytes fetched so far of image `imageId`, while it is being fetched. */
  progress(imageId: string): { done: number; total: number } | undefined {
    return this.progressOf.get(imageId);
  }

  /** Forgets the progress of an import that has settled. */
  forget(imageId: string): void {
    this.progressOf.delete(imageId);
  }

  /** Digests being written: blob GC must keep them. */
  fetching(): Set<string> {
    return new Set([...this.fetcher.fetching(), ...this.converting.keys()]);
  }

  /**
   * Fetches every blob of `resolved` into the store for image `imageId`, records the served
   * manifest, hashes the served archive and makes the image active; throws if any step fails.
   * With `activeBeforeHashes`, an image hashed in workers turns active once its blobs are stored
   * and verified, and DeferredHashes records the hashes when the workers finish.
   */
  async fetchAndActivate(imageId: string, resolved: ResolvedImage): Promise<void> {
    const stage = stageLog(this.log, imageId);
    const unique = [...new Map([resolved.config, ...resolved.layers].map((d) => [d.digest, d])).values()];
    const progress = { done: 0, total: unique.reduce((sum, d) => sum + d.size, 0) };
    this.progressOf.set(imageId, progress);
    const scan = this.options.scan === false ? undefined : (this.options.scan ?? DEFAULT_LIMITS.scan);
    const owner = (await this.images.require(imageId)).owner;
    const mayReuse = (digest: string) => this.mayReuse(imageId, owner, digest);
    const fetchOpts = {
      maxBlobBytes: this.options.maxBlobBytes,
      ...(scan ? { scan } : {}),
      onBytes: (n: number) => {
        progress.done += n;
      },
      mayReuse,
      ...(owner !== null ? { party: owner } : {}),
      ...(stage ? { trace: stage } : {}),
    };
    let hasher: ArchiveHasher | null = null;
    const fetchOne = async (d: Descriptor): Promise<void> => {
      stage?.('blob started', { digest: d.digest, size: d.size });
      const how = await this.fetcher.ensure(resolved.reference, d, fetchOpts);
      stage?.('blob stored', { digest: d.digest, how });
      if (how === 'present' || how === 'shared') progress.done += d.size;
      hasher?.ready(d.digest);
    };
    // The config first: a config that cannot describe these layers fails before any layer is fetched.
    await fetchOne(resolved.config);
    const diffIds = await this.readDiffIds(resolved.config, resolved.layers.length);
    const converted: string[] = [];
    // The archive is known now unless a zstd layer will be served as its converted tar.
    const inWorkers = progress.total >= (this.options.hashInWorkersFrom ?? HASH_IN_WORKERS_FROM);
    // With active_before_hashes the hashing starts once the blobs are stored: while they download
    // it would only take CPU from the download (on 2 cores every thread is busy then).
    if (inWorkers && !this.options.activeBeforeHashes && !resolved.layers.some((l) => l.mediaType === ZSTD_LAYER))
      hasher = new ArchiveHasher(this.blobs.root, blobsOf(resolved), [resolved.config.digest]);
    try {
      const served = new Map<string, BlobEntry>();
      const layers = [...new Map(resolved.layers.map((d, i) => [d.digest, { d, diffId: diffIds[i]! }])).values()];
      await forEachLimited(layers, this.options.maxParallelLayers, async ({ d, diffId }) => {
        if (d.mediaType !== ZSTD_LAYER) {
          await fetchOne(d);
          served.set(d.digest, { digest: d.digest, media_type: d.mediaType, size: d.size });
          return;
        }
        this.converting.set(diffId, (this.converting.get(diffId) ?? 0) + 1);
        converted.push(diffId);
        served.set(d.digest, await this.zstdAsTar(d, diffId, fetchOne, progress, scan, mayReuse));
      });
      stage?.('blobs stored');
      const blobs: ImageBlobs = { config: blobsOf(resolved).config, layers: resolved.layers.map((l) => served.get(l.digest)!) };
      if (converted.length) await this.images.setBlobs(imageId, blobs);
      const manifest = servedManifest(resolved, blobs.layers);
      // The row first, so blob GC keeps the manifest blob from the moment it exists.
      await this.images.setManifest(imageId, { digest: manifest.digest, media_type: manifest.mediaType, size: manifest.bytes.length });
      await this.blobs.put(manifest.digest, Readable.from([manifest.bytes]), { expectedSize: manifest.bytes.length });
      if (inWorkers) hasher ??= new ArchiveHasher(this.blobs.root, blobs, [blobs.config.digest, ...blobs.layers.map((l) => l.digest)]);
      // Read just before the transition, so properties set while the import ran are kept.
      const propertiesNow = async () => ({
        ...(await this.images.require(imageId)).properties,
        docker_image_id: resolved.config.digest,
        [MANIFEST_DIGEST_PROPERTY]: manifest.digest,
      });
      let activated;
      if (hasher && this.options.activeBeforeHashes) {
        const size = archiveSize(blobs);
        activated = await this.images.transition(imageId, 'active', { size, properties: await propertiesNow() });
        const workers = hasher;
        hasher = null; // the workers are DeferredHashes' now
        const digest = workers.digest().then((d) => {
          stage?.('hashes known', { size: d.size });
          return d;
        });
        this.hashes.track(imageId, size, digest, () => workers.close());
      } else {
        const archive = hasher ? await hasher.digest() : await digestArchive(this.blobs, blobs);
        stage?.('hashes known', { size: archive.size });
        activated = await this.images.transition(imageId, 'active', {
          size: archive.size,
          checksum: archive.md5,
          os_hash_algo: 'sha512',
          os_hash_value: archive.sha512,
          properties: await propertiesNow(),
        });
      }
      stage?.('active');
      this.log.info(
        { image_id: imageId, docker_image: activated.properties.docker_image, docker_digest: resolved.digest, size: activated.size },
        'image imported',
      );
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
  private async zstdAsTar(
    d: Descriptor,
    diffId: string,
    fetchOne: (d: Descriptor) => Promise<void>,
    progress: { done: number },
    scan: ScanLimits | undefined,
    mayReuse: (digest: string) => Promise<boolean>,
  ): Promise<BlobEntry> {
    const stored = await this.blobs.size(diffId);
    // Converted again unless the project may use the stored tar (BlobFetcher.prove says why).
    if (stored !== null && (await mayReuse(diffId))) {
      progress.done += d.size;
      return { digest: diffId, media_type: TAR_LAYER, size: stored };
    }
    await fetchOne(d);
    const put = await decompressZstdBlob(this.blobs, d.digest, (scan ?? DEFAULT_LIMITS.scan).maxUncompressedBytes, {
      ...(scan ? { scan } : {}),
      ...(this.options.zstdCommand ? { command: this.options.zstdCommand } : {}),
    });
    if (put.digest !== diffId) {
      if (put.created) await this.blobs.remove(put.digest);
      throw imageError('DIGEST_MISMATCH', `layer ${d.digest} decompresses to ${put.digest}, but the config says its diff_id is ${diffId}`, {
        digest: d.digest,
        expected: diffId,
        actual: put.digest,
      });
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
    for (const id of await this.images.imagesWithBlob(digest)) {
      if (id === imageId) continue;
      const image = await this.images.get(id);
      if (image?.status !== 'active') continue;
      const membership = image.visibility === 'shared' ? ((await this.members.get(id, owner))?.status ?? null) : null;
      if (canRead(image, { project: owner, admin: false }, membership)) return true;
    }
    return false;
  }

  /** The config must be an image config with one diff_id per layer, or `docker load` refuses it. */
  private async readDiffIds(config: Descriptor, layers: number): Promise<string[]> {
    const bytes = await readBody(await this.blobs.open(config.digest), CONFIG_LIMIT);
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
}
