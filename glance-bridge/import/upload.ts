import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { BerthError, describeError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { timeStage } from '../../common/stages.js';
import { DockerArchiveInspector } from '../archive/inspect.js';
import { hasCode, imageError } from '../errors.js';
import type { BlobStore } from '../store/blobs.js';
import type { ImageRepository } from '../store/images.js';
import type { ImageRecord } from '../store/types.js';
import { ArchiveHasher } from '../archive/hash.js';
import type { DeferredHashes } from './deferred-hashes.js';

export interface UploaderDeps {
  images: ImageRepository;
  blobs: BlobStore;
  log: Logger;
  /** `[image_store] max_image_bytes`: Glance's image_size_cap. */
  maxImageBytes: number;
  /**
   * `[image_store] active_before_hashes`: an upload of `from` bytes or more turns active once its
   * file is stored under its verified sha256, and `hashes` records the md5 and sha512 when worker
   * threads have read them from the stored file. Absent: every upload is hashed on the way in.
   */
  deferHashes?: { hashes: DeferredHashes; from: number };
}

/** Property naming why an upload failed, on killed images. */
export const UPLOAD_ERROR_PROPERTY = 'berth_upload_error';

/**
 * `PUT /v2/images/{id}/file` (Glance's upload; Berth's snapshots arrive this way). The data goes
 * straight into the blob store while size, md5 (`checksum`) and sha512 (`os_hash_value`) are
 * computed on the way; the image is `saving` meanwhile and `active` only once the blob is stored
 * and recorded. With `deferHashes`, a large upload leaves md5 and sha512 to worker threads reading
 * the stored file after it turns active (on this loop they cost 1.4 s of a 100 MB snapshot's 2 s
 * upload, measured), as a large import does. Any failure leaves it `killed` with nothing
 * readable. For container_format docker the data must be a `docker save` archive, whose config
 * digest becomes `docker_image_id`.
 */
export class ImageUploader {
  private readonly publishing = new Set<string>();

  constructor(private readonly deps: UploaderDeps) {}

  /** Digests stored by uploads not yet recorded: blob GC must keep them. */
  pending(): ReadonlySet<string> {
    return this.publishing;
  }

  /**
   * `maxBytes`: a lower limit than `maxImageBytes` for this upload. `cover`: called with the bytes
   * received so far before each chunk is stored (the owner's quota reservation grows there); a
   * rejection fails the upload.
   */
  async upload(
    id: string,
    source: Readable,
    declaredLength: number | null,
    opts: { maxBytes?: number; cover?: (total: number) => Promise<void> } = {},
  ): Promise<ImageRecord> {
    const { maxBytes } = opts;
    const image = await this.deps.images.require(id);
    if (image.status !== 'queued') {
      throw imageError('IMAGE_CONFLICT', `image ${id} is ${image.status}; data can only be uploaded to a queued image`, { image_id: id, status: image.status });
    }
    const max = Math.min(this.deps.maxImageBytes, maxBytes ?? Number.MAX_SAFE_INTEGER);
    if (declaredLength !== null && declaredLength > max) {
      throw imageError('BLOB_TOO_LARGE', `image data of ${declaredLength} bytes is over the ${max} byte limit`, { image_id: id, limit: max });
    }
    // The conditional transition is the lock: of two concurrent uploads, one sees `saving`.
    await this.deps.images.transition(id, 'saving').catch((err: unknown) => {
      if (hasCode(err, 'IMAGE_INVALID_STATE')) throw imageError('IMAGE_CONFLICT', `image ${id} is already receiving data`, { image_id: id });
      throw err;
    });
    let digest: string | null = null;
    try {
      const stored = await timeStage('upload', 'ingest', id, () => this.store(image, source, max, declaredLength, opts.cover), this.deps.log);
      digest = stored.digest;
      await this.deps.images.setFile(id, { digest: stored.digest, media_type: 'application/octet-stream', size: stored.size });
      const current = await this.deps.images.require(id);
      const properties = stored.dockerImageId ? { ...current.properties, docker_image_id: stored.dockerImageId } : current.properties;
      if (stored.md5 === null || stored.sha512 === null) return await this.activateBeforeHashes(id, stored.digest, stored.size, properties);
      return await this.deps.images.transition(id, 'active', {
        size: stored.size,
        checksum: stored.md5,
        os_hash_algo: 'sha512',
        os_hash_value: stored.sha512,
        properties,
      });
    } catch (err) {
      source.destroy();
      await this.kill(id, err);
      throw err;
    } finally {
      if (digest) this.publishing.delete(digest);
    }
  }

  /** Active with its size, no hashes yet: DeferredHashes records them once the workers have read the stored file. */
  private async activateBeforeHashes(id: string, digest: string, size: number, properties: ImageRecord['properties']): Promise<ImageRecord> {
    const { hashes } = this.deps.deferHashes!;
    const workers = new ArchiveHasher(this.deps.blobs.root, [{ digest, size }], [digest]);
    let activated: ImageRecord;
    try {
      activated = await this.deps.images.transition(id, 'active', { size, properties });
    } catch (err) {
      await workers.close();
      throw err;
    }
    hashes.track(id, size, workers.digest(), () => workers.close());
    return activated;
  }

  private async store(image: ImageRecord, source: Readable, max: number, declaredLength: number | null, cover?: (total: number) => Promise<void>) {
    const md5 = createHash('md5');
    const sha512 = createHash('sha512');
    const deferFrom = this.deps.deferHashes?.from;
    // Hashed on the way in until the upload is known to be large (declared, or once that many
    // bytes arrived); the partial hashes are then dropped and the stored file hashed instead.
    let inline = deferFrom === undefined || declaredLength === null || declaredLength < deferFrom;
    const inspector = image.container_format === 'docker' ? new DockerArchiveInspector() : null;
    let received = 0;
    try {
      const put = await this.deps.blobs.ingest(source, {
        maxBytes: max,
        observe: async (chunk) => {
          received += chunk.length;
          // Held before it is written: bytes on disk are always covered by the owner's quota.
          if (cover) await cover(received);
          if (inline && deferFrom !== undefined && received >= deferFrom) inline = false;
          if (inline) {
            md5.update(chunk);
            sha512.update(chunk);
          }
          return inspector?.write(chunk);
        },
        beforePublish: (digest) => {
          this.publishing.add(digest);
        },
      });
      // Checked before the blob is recorded: a bad archive never becomes the image's data.
      const dockerImageId = inspector ? await inspector.finish() : null;
      return { ...put, md5: inline ? md5.digest('hex') : null, sha512: inline ? sha512.digest('hex') : null, dockerImageId };
    } catch (err) {
      inspector?.destroy();
      if (hasCode(err, 'BLOB_TOO_LARGE')) throw imageError('BLOB_TOO_LARGE', `image data is over the ${max} byte limit`, { image_id: image.id, limit: max });
      throw err;
    }
  }

  private async kill(id: string, reason: unknown): Promise<void> {
    const message = reason instanceof BerthError ? `${reason.code}: ${reason.message}` : 'upload interrupted';
    this.deps.log.warn({ image_id: id, reason: describeError(reason) }, 'image upload failed');
    try {
      await this.deps.images.clearFile(id);
      const current = await this.deps.images.require(id);
      await this.deps.images.transition(id, 'killed', { properties: { ...current.properties, [UPLOAD_ERROR_PROPERTY]: message } });
    } catch (err) {
      // Deleted while uploading: nothing left to mark.
      if (!hasCode(err, 'IMAGE_NOT_FOUND') && !hasCode(err, 'IMAGE_INVALID_STATE')) throw err;
    }
  }
}
