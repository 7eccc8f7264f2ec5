import type { Router } from '@koa/router';
import { invalidInput } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { readJsonBody } from '../../common/koa.js';
import { imageError } from '../errors.js';
import { exportImage, type ExportDeps, type ExportOptions, type ExportTarget } from '../archive/export.js';
import type { BlobStore } from '../store/blobs.js';
import type { ImageRepository } from '../store/images.js';
import type { Visibility } from '../store/models.js';
import { callerIn } from '../policy/access.js';
import { imageId } from './params.js';
import { checkVisibility } from '../policy/glance-policy.js';
import { VISIBILITIES } from './validate.js';

export interface ExportRoutesDeps {
  images: ImageRepository;
  blobs: BlobStore;
  log: Logger;
  maxBodyBytes: number;
  exportTarget?: ExportTarget;
  /** The importer's hashes still being computed: an export waits for them. */
  importer?: { hashes: ExportDeps['hashes'] };
}

function parseExportBody(body: unknown): ExportOptions {
  if (body === undefined) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalidInput('body must be {"visibility": "...", "name": "..."} or empty');
  const b = body as Record<string, unknown>;
  for (const key of Object.keys(b)) if (key !== 'visibility' && key !== 'name') throw invalidInput(`unknown export option ${key}`, { field: key });
  if (b.visibility !== undefined && !(VISIBILITIES as unknown[]).includes(b.visibility))
    throw invalidInput(`visibility must be one of ${VISIBILITIES.join(', ')}`, { field: 'visibility' });
  if (b.name !== undefined && (typeof b.name !== 'string' || b.name.length > 255))
    throw invalidInput('name must be a string of at most 255 characters', { field: 'name' });
  return { ...(b.visibility !== undefined ? { visibility: b.visibility as Visibility } : {}), ...(b.name !== undefined ? { name: b.name as string } : {}) };
}

/**
 * `POST /v2/images/{id}/actions/export`: copies the image into the Glance configured in
 * `[glance]` and answers with the remote image once it is active and verified. An action like
 * Glance's deactivate, so only the owner or an admin may run it (the access guard decides).
 */
export function addExportRoutes(router: Router, deps: ExportRoutesDeps): void {
  router.post('/v2/images/:id/actions/export', async (ctx) => {
    const id = imageId(ctx);
    const opts = parseExportBody(await readJsonBody(ctx, deps.maxBodyBytes));
    // The copy is made with the service's [glance] credentials, so the remote Glance cannot apply
    // its publicize_image policy to the caller: it is applied here.
    checkVisibility(callerIn(ctx), opts.visibility);
    if (!deps.exportTarget)
      throw imageError(
        'EXPORT_NOT_CONFIGURED',
        "no remote Glance to export to: set [glance] api_url (or auth_url, for the catalog's image endpoint) of the image service",
        { image_id: id },
      );
    const remote = await exportImage({ images: deps.images, blobs: deps.blobs, log: deps.log, hashes: deps.importer?.hashes }, deps.exportTarget, id, opts);
    ctx.status = 200;
    ctx.body = { image: remote };
  });
}
