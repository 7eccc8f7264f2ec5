import type { Readable } from 'node:stream';
import { BerthError, describeError, invalidInput } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { archiveSize, createDockerArchive } from './build.js';
import type { GlanceImage, ImageService } from '../client/types.js';
import { imageError } from '../errors.js';
import type { BlobStore } from '../store/blobs.js';
import type { ImageRepository } from '../store/images.js';
import type { ImageRecord } from '../store/types.js';
import type { Visibility } from '../store/models.js';

/** The Glance exports go to: an image client of the cloud's Glance, authenticated with `[glance]`. */
export type ExportTarget = ImageService;

export interface ExportDeps {
  images: ImageRepository;
  blobs: BlobStore;
  log: Logger;
  /** Hashes of images that turned active before them (import/deferred-hashes.ts): an export waits for them. */
  hashes?: { settle(imageId: string): Promise<void> } | undefined;
}
export interface ExportOptions {
  visibility?: Visibility;
  name?: string;
}

/** On the remote image: where the content came from, under names any Glance accepts at creation. */
export const SOURCE_IMAGE_PROPERTY = 'berth_source_image';
export const SOURCE_DIGEST_PROPERTY = 'berth_source_digest';
/** What a host needs to boot the image from a plain Glance. */
const BOOT_PROPERTIES = ['docker_image_id', 'docker_digest', 'docker_index_digest'] as const;

/** The docker-load archive of `image` as a stream, with its size: the uploaded file or one generated from its blobs. */
async function archiveOf(deps: ExportDeps, image: ImageRecord): Promise<{ stream: Readable; size: number }> {
  const file = await deps.images.fileOf(image.id);
  if (file) return { stream: await deps.blobs.open(file.digest), size: file.size };
  const blobs = await deps.images.blobsOf(image.id);
  if (!blobs) throw imageError('IMAGE_NO_DATA', `image ${image.id} has no data to export`, { image_id: image.id });
  return { stream: createDockerArchive(deps.blobs, blobs), size: image.size ?? archiveSize(blobs) };
}

function checkExportable(image: ImageRecord): void {
  if (image.status !== 'active') {
    throw imageError('IMAGE_INVALID_STATE', `image ${image.id} is ${image.status}; only active images can be exported`, {
      image_id: image.id,
      status: image.status,
    });
  }
  if (image.container_format !== 'docker') {
    throw invalidInput(`image ${image.id} has container_format ${String(image.container_format)}; only docker images are exported`, { image_id: image.id });
  }
}

/** The remote must hold exactly the bytes sent: same size, md5 and sha512 as recorded here. */
function verifyCopy(local: ImageRecord, remote: GlanceImage, size: number): void {
  const wrong: string[] = [];
  if (remote.status !== 'active') wrong.push(`status ${remote.status}`);
  if (remote.size !== size) wrong.push(`size ${String(remote.size)} instead of ${size}`);
  if (local.checksum && remote.checksum !== local.checksum) wrong.push(`checksum ${String(remote.checksum)} instead of ${local.checksum}`);
  if (local.os_hash_value && remote.os_hash_value && remote.os_hash_value !== local.os_hash_value) wrong.push('a different os_hash_value');
  if (local.os_hash_value && !remote.os_hash_value && !local.checksum) wrong.push('no os_hash_value to compare');
  if (wrong.length) {
    throw imageError('IMAGE_EXPORT_FAILED', `the remote Glance stored image ${remote.id} with ${wrong.join(', ')}`, {
      image_id: local.id,
      remote_image_id: remote.id,
    });
  }
}

/**
 * Pushes an active docker image of this store into another Glance v2: creates the image there
 * (`container_format=docker`, `disk_format=raw`, the same name, properties naming the source
 * reference and manifest digest), streams the docker-load archive straight from the blob store
 * into `PUT /v2/images/{id}/file` (nothing staged), and checks the remote's size and hashes. A
 * failed export deletes the remote image, so the remote never keeps a partial copy.
 */
export async function exportImage(deps: ExportDeps, target: ExportTarget, imageId: string, opts: ExportOptions = {}): Promise<GlanceImage> {
  // The copy is checked against the hashes recorded here: an image that turned active before them waits.
  await deps.hashes?.settle(imageId);
  const local = await deps.images.require(imageId);
  checkExportable(local);
  const p = local.properties;
  const remote = await target.createImage({
    name: opts.name ?? local.name ?? local.id,
    container_format: 'docker',
    disk_format: 'raw',
    visibility: opts.visibility ?? 'private',
    min_ram: local.min_ram,
    min_disk: local.min_disk,
    [SOURCE_IMAGE_PROPERTY]: local.id,
    ...(p.docker_image ? { docker_image: p.docker_image } : {}),
    ...(p.docker_digest ? { [SOURCE_DIGEST_PROPERTY]: p.docker_digest } : {}),
  });
  try {
    const { stream, size } = await archiveOf(deps, local);
    let copy = await target.uploadImage(remote.id, stream, size);
    verifyCopy(local, copy, size);
    // A Berth store derives docker_image_id from the upload (and refuses to be told); a Glance does not.
    if (copy.docker_image_id === undefined) {
      const boot = Object.fromEntries(BOOT_PROPERTIES.filter((k) => p[k]).map((k) => [k, p[k]!]));
      if (Object.keys(boot).length) copy = await target.setProperties(remote.id, boot);
    }
    if (p.docker_image_id && copy.docker_image_id !== p.docker_image_id) {
      throw imageError(
        'IMAGE_EXPORT_FAILED',
        `the remote Glance gives image ${remote.id} docker_image_id ${String(copy.docker_image_id)} instead of ${p.docker_image_id}`,
        { image_id: local.id, remote_image_id: remote.id },
      );
    }
    deps.log.info({ image_id: local.id, remote_image_id: remote.id, bytes: size }, 'image exported');
    return copy;
  } catch (err) {
    await target
      .deleteImage(remote.id)
      .catch((delErr: unknown) => deps.log.warn({ err: delErr, remote_image_id: remote.id }, 'could not delete the remote image of a failed export'));
    if (err instanceof BerthError && (err.code === 'IMAGE_EXPORT_FAILED' || err.code === 'IMAGE_NO_DATA')) throw err;
    throw imageError(
      'IMAGE_EXPORT_FAILED',
      `export of image ${local.id} failed: ${describeError(err)}`,
      { image_id: local.id, remote_image_id: remote.id },
      err,
    );
  }
}
