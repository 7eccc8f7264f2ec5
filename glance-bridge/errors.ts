import { BerthError, type ErrorDetails } from '../common/errors.js';

/**
 * Every code the image service raises on purpose. Statuses follow one rule: the caller's mistake
 * is 4xx; a registry that is down or slow is a retryable 502/503/504; a registry that answers with
 * something Berth cannot import is 422, because retrying will not help and it is not our fault.
 */
export type ImageErrorCode =
  | 'IMAGE_NOT_FOUND' | 'IMAGE_CONFLICT' | 'IMAGE_INVALID_STATE' | 'IMAGE_PROTECTED' | 'IMAGE_IMPORT_FAILED'
  | 'IMAGE_NO_DATA' | 'INVALID_REFERENCE' | 'MANIFEST_NOT_FOUND' | 'MANIFEST_INVALID' | 'MANIFEST_UNSUPPORTED'
  | 'MANIFEST_TOO_LARGE' | 'PLATFORM_NOT_FOUND' | 'IMAGE_CONFIG_INVALID' | 'DIGEST_MISMATCH'
  | 'BLOB_SIZE_MISMATCH' | 'BLOB_TOO_LARGE' | 'BLOB_NOT_FOUND' | 'REGISTRY_UNREACHABLE'
  | 'REGISTRY_AUTH_FAILED' | 'REGISTRY_ERROR' | 'REGISTRY_DESTINATION_REFUSED' | 'LAYER_INVALID' | 'LAYER_UNSAFE'
  | 'IMAGE_FORBIDDEN' | 'MEMBER_NOT_FOUND' | 'MEMBER_CONFLICT' | 'MEMBER_FORBIDDEN' | 'QUOTA_EXCEEDED'
  | 'EXPORT_NOT_CONFIGURED' | 'IMAGE_EXPORT_FAILED' | 'IMAGE_HASH_FAILED';

const STATUS: Record<ImageErrorCode, { status: number; retryable: boolean }> = {
  IMAGE_NOT_FOUND: { status: 404, retryable: false },
  IMAGE_CONFLICT: { status: 409, retryable: false },
  IMAGE_INVALID_STATE: { status: 409, retryable: false },
  IMAGE_PROTECTED: { status: 403, retryable: false },
  IMAGE_IMPORT_FAILED: { status: 422, retryable: false },
  IMAGE_NO_DATA: { status: 409, retryable: false },
  INVALID_REFERENCE: { status: 400, retryable: false },
  MANIFEST_NOT_FOUND: { status: 404, retryable: false },
  MANIFEST_INVALID: { status: 422, retryable: false },
  MANIFEST_UNSUPPORTED: { status: 422, retryable: false },
  MANIFEST_TOO_LARGE: { status: 422, retryable: false },
  PLATFORM_NOT_FOUND: { status: 422, retryable: false },
  IMAGE_CONFIG_INVALID: { status: 422, retryable: false },
  // Corruption in transit or a misbehaving cache: a retry may well succeed.
  DIGEST_MISMATCH: { status: 502, retryable: true },
  BLOB_SIZE_MISMATCH: { status: 502, retryable: true },
  BLOB_TOO_LARGE: { status: 413, retryable: false },
  BLOB_NOT_FOUND: { status: 404, retryable: false },
  REGISTRY_UNREACHABLE: { status: 503, retryable: true },
  REGISTRY_AUTH_FAILED: { status: 403, retryable: false },
  REGISTRY_ERROR: { status: 502, retryable: true },
  // A registry, token realm or redirect that leads to an internal address, or downgrades to HTTP.
  REGISTRY_DESTINATION_REFUSED: { status: 422, retryable: false },
  // A layer that does not decompress, or whose tar could escape the container's root.
  LAYER_INVALID: { status: 422, retryable: false },
  LAYER_UNSAFE: { status: 422, retryable: false },
  // Visible to the caller, but only its owner (or an admin) may change it.
  IMAGE_FORBIDDEN: { status: 403, retryable: false },
  MEMBER_NOT_FOUND: { status: 404, retryable: false },
  MEMBER_CONFLICT: { status: 409, retryable: false },
  MEMBER_FORBIDDEN: { status: 403, retryable: false },
  QUOTA_EXCEEDED: { status: 413, retryable: false },
  // No remote Glance in [glance]: the request conflicts with how this service is deployed.
  EXPORT_NOT_CONFIGURED: { status: 409, retryable: false },
  // The remote Glance failed or stored something else than was sent; a retry starts afresh.
  IMAGE_EXPORT_FAILED: { status: 502, retryable: true },
  // The served archive could not be hashed at import (a worker failed): ours, and a new import may succeed.
  IMAGE_HASH_FAILED: { status: 500, retryable: true },
};

export function imageError(code: ImageErrorCode, message: string, details: ErrorDetails = {}, cause?: unknown): BerthError {
  return new BerthError(code, message, { ...STATUS[code], details, cause });
}

export function hasCode(err: unknown, code: ImageErrorCode): boolean {
  return err instanceof BerthError && err.code === code;
}
