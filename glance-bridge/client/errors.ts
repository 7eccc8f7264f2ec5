import { errorFactory, type ErrorCatalog, type ErrorFactory } from '../../common/errors.js';

/**
 * Every code the image service raises on purpose, declared once; its server and its client raise
 * them through `imageError`. Statuses follow one rule: the caller's mistake is 4xx (as Glance
 * answers it); a registry that is down or slow is a retryable 502/503/504; a registry that answers
 * with something Berth cannot import is 422, because retrying will not help and it is not our fault.
 */
export const IMAGE_ERROR_CODES = [
  'IMAGE_NOT_FOUND',
  'IMAGE_CONFLICT',
  'IMAGE_INVALID_STATE',
  'IMAGE_PROTECTED',
  'IMAGE_IMPORT_FAILED',
  'IMAGE_NO_DATA',
  'INVALID_REFERENCE',
  'MANIFEST_NOT_FOUND',
  'MANIFEST_INVALID',
  'MANIFEST_UNSUPPORTED',
  'MANIFEST_TOO_LARGE',
  'PLATFORM_NOT_FOUND',
  'IMAGE_CONFIG_INVALID',
  'DIGEST_MISMATCH',
  'BLOB_SIZE_MISMATCH',
  'BLOB_TOO_LARGE',
  'BLOB_NOT_FOUND',
  'REGISTRY_UNREACHABLE',
  'REGISTRY_AUTH_FAILED',
  'REGISTRY_ERROR',
  'REGISTRY_DESTINATION_REFUSED',
  'LAYER_INVALID',
  'LAYER_UNSAFE',
  'IMAGE_FORBIDDEN',
  'MEMBER_NOT_FOUND',
  'MEMBER_CONFLICT',
  'MEMBER_FORBIDDEN',
  'QUOTA_EXCEEDED',
  'EXPORT_NOT_CONFIGURED',
  'IMAGE_EXPORT_FAILED',
  'IMAGE_HASH_FAILED',
  'IMAGE_IMPORT_TIMEOUT',
  'IMAGE_SERVICE_UNAUTHORIZED',
  'IMAGE_STATE_FORBIDDEN',
  'ATTRIBUTE_FORBIDDEN',
  'TAG_NOT_FOUND',
  'TOO_MANY_TAGS',
] as const;

export type ImageErrorCode = (typeof IMAGE_ERROR_CODES)[number];

export const IMAGE_ERRORS: ErrorCatalog<ImageErrorCode> = {
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
  // Raised by the client: the import it waits for outlived its deadline; the import may still finish.
  IMAGE_IMPORT_TIMEOUT: { status: 504, retryable: true },
  // Raised by the client: the image service refused Berth's own credentials, a deployment fault.
  IMAGE_SERVICE_UNAUTHORIZED: { status: 502, retryable: false },
  // Glance answers 403, not 409, when an image's status forbids downloading its data (deactivated)
  // or (de|re)activating it; 409 (IMAGE_INVALID_STATE) is for transitions that conflict.
  IMAGE_STATE_FORBIDDEN: { status: 403, retryable: false },
  // As Glance: a read-only or reserved attribute, or removing a base one.
  ATTRIBUTE_FORBIDDEN: { status: 403, retryable: false },
  TAG_NOT_FOUND: { status: 404, retryable: false },
  TOO_MANY_TAGS: { status: 413, retryable: false },
};

export const imageError: ErrorFactory<ImageErrorCode> = errorFactory(IMAGE_ERRORS);
