import { imageError } from '../errors.js';
import type { ImageRepository } from '../store/images.js';
import type { Reservation } from '../store/reservations.js';

/** `[image_store] max_images_per_project` and `max_bytes_per_project`; 0 is no limit. */
export interface ProjectQuotas {
  maxImages: number;
  maxBytes: number;
}

/** Refuses a new image for `owner` at its count quota, in the words of Glance's unified limits. */
export async function checkImageCount(images: ImageRepository, owner: string, quotas: ProjectQuotas | undefined): Promise<void> {
  if (!quotas?.maxImages) return;
  const { count } = await images.usage(owner);
  if (count >= quotas.maxImages) {
    throw imageError('QUOTA_EXCEEDED', `Resource image_count_total is over limit of ${quotas.maxImages} due to current usage ${count} and delta 1`, {
      project: owner,
      limit: quotas.maxImages,
      usage: count,
    });
  }
}

/**
 * Checks the count quota and creates the image as one step per project: two concurrent creates
 * at one below the limit cannot both pass the check before either row exists.
 */
export async function createCounted<T>(images: ImageRepository, owner: string, quotas: ProjectQuotas | undefined, create: () => Promise<T>): Promise<T> {
  if (!quotas?.maxImages) return create();
  return images.reservations.exclusive(owner, async () => {
    await checkImageCount(images, owner, quotas);
    return create();
  });
}

/** Bytes `owner` may still store (recorded sizes and running reservations deducted), or null without a byte quota. */
export async function remainingBytes(images: ImageRepository, owner: string, quotas: ProjectQuotas | undefined): Promise<number | null> {
  if (!quotas?.maxBytes) return null;
  const { bytes } = await images.usage(owner);
  return Math.max(0, quotas.maxBytes - bytes - images.reservations.reserved(owner));
}

/** Glance's wording for an upload over the storage quota (glance/quota/__init__.py). */
export function storageQuotaExceeded(owner: string, size: number | null, remaining: number) {
  const what = size === null ? 'The size of the data' : `The size of the data ${size}`;
  return imageError(
    'QUOTA_EXCEEDED',
    `Denying attempt to upload image because it exceeds the quota: ${what} will exceed the limit. ${remaining} bytes remaining.`,
    { project: owner, remaining },
  );
}

/** Bytes held for one running upload or import; `release` once its size is recorded or it failed. */
export interface HeldBytes {
  /** Makes sure `total` bytes are held, reserving more when needed; QUOTA_EXCEEDED when they do not fit. */
  cover(total: number): Promise<void>;
  release(): void;
}

const UNLIMITED: HeldBytes = { cover: async () => undefined, release: () => undefined };

/** Step by which a stream of unknown length grows its reservation, so it asks again only now and then. */
export const RESERVATION_STEP = 64 * 1024 * 1024;

/**
 * Reserves `bytes` of `owner`'s storage quota before any data is written: the check and the
 * reservation are one step, so concurrent uploads or imports that each fit cannot together pass
 * the quota. `size` names the declared size in the refusal (null: unknown).
 */
export async function reserveBytes(
  images: ImageRepository,
  owner: string,
  quotas: ProjectQuotas | undefined,
  bytes: number,
  size: number | null = bytes,
): Promise<HeldBytes> {
  const limit = quotas?.maxBytes;
  if (!limit) return UNLIMITED;
  const granted = await images.reservations.reserve(owner, bytes, limit);
  if (!('reservation' in granted)) throw storageQuotaExceeded(owner, size, granted.remaining);
  const reservation: Reservation = granted.reservation;
  return {
    async cover(total) {
      if (total <= reservation.bytes) return;
      const grown = await images.reservations.extend(reservation, total, total + RESERVATION_STEP, limit);
      if (!('reservation' in grown)) throw storageQuotaExceeded(owner, null, grown.remaining);
    },
    release: () => reservation.release(),
  };
}
