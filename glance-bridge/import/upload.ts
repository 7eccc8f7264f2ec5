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

export interface UploaderDeps {
  images: ImageRepository;
  blobs: BlobStore;
  log: Logger;
  /** `[image_store] max_image_bytes`: Glance's image_size_cap. */
  maxImageBytes: number;
}

/** Property naming why an upload failed, on killed images. */
export const UPLOAD_ERROR_PROPERTY = 'berth_upload_error';

/**
 * `PUT /v2/images/{id}/file` (Glance's upload; Berth's snapshots arrive this way). The data goes
 * straight into the blob store while size, md5 (`checksum`) and sha512 (`os_hash_value`) are
 * computed on the way; the image is `saving` meanwhile and `active` only once the blob is stored
 * and recorded. Any failure leaves it `killed` with nothing readable. For container_format
 * docker the data must be a `docker save` archive, whose config digest becomes `docker_image_id`.
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
      const stored = await timeStage('upload', 'ingest', id, () => this.store(image, source, max, opts.cover), this.deps.log);
      digest = stored.digest;
      await this.deps.images.setFile(id, { digest: stored.digest, media_type: 'application/octet-stream', size: stored.size });
      const current = await this.deps.images.require(id);
      const properties = stored.dockerImageId ? { ...current.properties, docker_image_id: stored.dockerImageId } : current.properties;
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

  private async store(image: ImageRecord, source: Readable, max: number, cover?: (total: number) => Promise<void>) {
    const md5 = createHash('md5');
    const sha512 = createHash('sha512');
    const inspector = image.container_format === 'docker' ? new DockerArchiveInspector() : null;
    let received = 0;
    try {
      const put = await this.deps.blobs.ingest(source, {
        maxBytes: max,
        observe: async (chunk) => {
          received += chunk.length;
          // Held before it is written: bytes on disk are always covered by the owner's quota.
          if (cover) await cover(received);
          md5.update(chunk);
          sha512.update(chunk);
          return inspector?.write(chunk);
        },
        beforePublish: (digest) => {
          this.publishing.add(digest);
        },
      });
      // Checked before the blob is recorded: a bad archive never becomes the image's data.
      const dockerImageId = inspector ? await inspector.finish() : null;
      return { ...put, md5: md5.digest('hex'), sha512: sha512.digest('hex'), dockerImageId };
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
