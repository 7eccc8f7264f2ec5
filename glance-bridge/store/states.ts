import type { ImageStatus } from '../client/types.js';
import { imageError } from '../errors.js';

/**
 * Image lifecycle, after Glance's (glance/domain/__init__.py). `importing` is the interoperable
 * import's working state; a failed import ends in `killed`, and only `active` images have data.
 */
const TRANSITIONS: Record<ImageStatus, readonly ImageStatus[]> = {
  queued: ['importing', 'saving', 'uploading', 'killed', 'deleted'],
  uploading: ['importing', 'queued', 'killed', 'deleted'],
  importing: ['active', 'killed', 'queued', 'deleted'],
  saving: ['active', 'killed', 'queued', 'deleted'],
  active: ['deactivated', 'deleted'],
  deactivated: ['active', 'deleted'],
  killed: ['deleted'],
  deleted: [],
};

export function canTransition(from: ImageStatus, to: ImageStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export function assertTransition(id: string, from: ImageStatus, to: ImageStatus): void {
  if (!canTransition(from, to)) {
    throw imageError('IMAGE_INVALID_STATE', `image ${id} is ${from} and cannot become ${to}`, { image_id: id, status: from, wanted: to });
  }
}
