import { invalidInput } from '../../common/errors.js';
import { imageError } from '../errors.js';

/** Glance's image_property_quota default (`[image_store] image_property_quota`). */
export const DEFAULT_PROPERTY_QUOTA = 128;
/** Glance's image_tag_quota default. */
export const MAX_TAGS = 128;
/** Longest key and value of a custom property set through the API (Glance's image_properties.name is 255). */
export const MAX_PROPERTY_LENGTH = 255;

/**
 * Limits on what one image's metadata may hold, so a tenant cannot grow rows (and every listing
 * that reads them) without bound. `next` is the image's custom properties after the request,
 * `before` what it had (an empty map on create): only keys and values the request sets are held
 * to the length limit (the service's own properties, such as an import error, may be longer), and
 * a patch that does not add properties passes even on an image already over a lowered quota, as
 * in Glance.
 */
export function checkPropertyQuota(
  next: Record<string, string>,
  before: Record<string, string>,
  quota = DEFAULT_PROPERTY_QUOTA,
  tags?: { next: string[]; before: string[] },
): void {
  for (const [key, value] of Object.entries(next)) {
    if (before[key] === value) continue;
    if (key.length > MAX_PROPERTY_LENGTH)
      throw invalidInput(`property name ${key.slice(0, 32)}... has ${key.length} characters; at most ${MAX_PROPERTY_LENGTH} are allowed`, {
        field: key.slice(0, 64),
        limit: MAX_PROPERTY_LENGTH,
      });
    if (value.length > MAX_PROPERTY_LENGTH)
      throw invalidInput(`property ${key} has a value of ${value.length} characters; at most ${MAX_PROPERTY_LENGTH} are allowed`, {
        field: key,
        limit: MAX_PROPERTY_LENGTH,
      });
  }
  const attempted = Object.keys(next).length;
  if (attempted > quota && attempted > Object.keys(before).length) {
    throw imageError('QUOTA_EXCEEDED', `The limit has been exceeded on the number of allowed image properties. Attempted: ${attempted}, Maximum: ${quota}`, {
      attempted,
      limit: quota,
      option: 'image_property_quota',
    });
  }
  if (tags && tags.next.length > MAX_TAGS && tags.next.length > tags.before.length) {
    throw imageError(
      'QUOTA_EXCEEDED',
      `The limit has been exceeded on the number of allowed image tags. Attempted: ${tags.next.length}, Maximum: ${MAX_TAGS}`,
      { attempted: tags.next.length, limit: MAX_TAGS },
    );
  }
}
