import { imageError } from '../errors.js';
import type { ImageRepository } from '../store/images.js';

/** `[image_store] max_images_per_project` and `max_bytes_per_project`; 0 is no limit. */
export interface ProjectQuotas { maxImages: number; maxBytes: number }

/** Refuses a new image for `owner` at its count quota, in the words of Glance's unified limits. */
export async function checkImageCount(images: ImageRepository, owner: string, quotas: ProjectQuotas | undefined): Promise<void> {
  if (!quotas?.maxImages) return;
  const { count } = await images.usage(owner);
  if (count >= quotas.maxImages) {
    throw imageError('QUOTA_EXCEEDED', `Resource image_count_total is over limit of ${quotas.maxImages} due to current usage ${count} and delta 1`, { project: owner, limit: quotas.maxImages, usage: count });
  }
}

/** Bytes `owner` may still store, or null without a byte quota. */
export async function remainingBytes(images: ImageRepository, owner: string, quotas: ProjectQuotas | undefined): Promise<number | null> {
  if (!quotas?.maxBytes) return null;
  const { bytes } = await images.usage(owner);
  return Math.max(0, quotas.maxBytes - bytes);
}

/** Glance's wording for an upload over the storage quota (glance/quota/__init__.py). */
export function storageQuotaExceeded(owner: string, size: number | null, remaining: number) {
  const what = size === null ? 'The size of the data' : `The size of the data ${size}`;
  return imageError('QUOTA_EXCEEDED', `Denying attempt to upload image because it exceeds the quota: ${what} will exceed the limit. ${remaining} bytes remaining.`, { project: owner, remaining });
}
