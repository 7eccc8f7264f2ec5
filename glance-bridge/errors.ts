import { BerthError } from '../common/errors.js';
import type { ImageErrorCode } from './client/errors.js';

export { IMAGE_ERROR_CODES, IMAGE_ERRORS, imageError, type ImageErrorCode } from './client/errors.js';

export function hasCode(err: unknown, code: ImageErrorCode): boolean {
  return err instanceof BerthError && err.code === code;
}
