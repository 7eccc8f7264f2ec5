import type { Router } from '@koa/router';
import type Koa from 'koa';
import { commonError } from '../../common/errors.js';
import { imageError } from '../errors.js';
import { archiveSize, createDockerArchive } from '../archive/build.js';
import type { BlobStore } from '../store/blobs.js';
import type { ImageRepository } from '../store/images.js';
import type { BlobEntry, ImageRecord } from '../store/types.js';
import type { ImageUploader } from '../import/upload.js';
import { parseRange } from '../store/range.js';
import { imageId } from './params.js';
import { reserveBytes, type ProjectQuotas } from '../policy/quotas.js';

export interface DataRoutesDeps {
  images: ImageRepository;
  blobs: BlobStore;
  uploader: ImageUploader;
  quotas?: ProjectQuotas;
}

async function serveFile(ctx: Koa.Context, blobs: BlobStore, image: ImageRecord, file: BlobEntry): Promise<void> {
  ctx.type = 'application/octet-stream';
  ctx.set('accept-ranges', 'bytes');
  const range = parseRange(ctx.get('range') || undefined, file.size);
  if (range === 'unsatisfiable') {
    ctx.status = 416;
    ctx.set('content-range', `bytes */${file.size}`);
    ctx.body = {
      error: { code: 'RANGE_NOT_SATISFIABLE', message: `range ${ctx.get('range')} is outside the ${file.size} bytes of image ${image.id}`, details: {} },
    };
    return;
  }
  if (range) {
    ctx.status = 206;
    ctx.set('content-range', `bytes ${range.start}-${range.end}/${file.size}`);
    if (ctx.method !== 'HEAD') ctx.body = await blobs.open(file.digest, range);
    ctx.length = range.end - range.start + 1;
    return;
  }
  ctx.status = 200;
  if (image.checksum) ctx.set('content-md5', image.checksum);
  // HEAD gets the headers only: a stream koa never reads would keep blob files open.
  if (ctx.method !== 'HEAD') ctx.body = await blobs.open(file.digest);
  ctx.length = file.size;
}

/** Image data: Glance's upload and download, both streamed. */
export function addDataRoutes(router: Router, deps: DataRoutesDeps): void {
  router.put('/v2/images/:id/file', async (ctx) => {
    const id = imageId(ctx);
    const type = ctx.get('content-type').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/octet-stream') {
      throw commonError('UNSUPPORTED_MEDIA_TYPE', `image data must be sent as application/octet-stream, not ${type || 'no content-type'}`);
    }
    const length = ctx.get('content-length') ? Number(ctx.get('content-length')) : null;
    const owner = (await deps.images.require(id)).owner ?? '';
    // The declared bytes are reserved before anything is written, and held until the size is
    // recorded: concurrent uploads of one project count each other. Without Content-Length the
    // reservation grows as data arrives.
    const held = await reserveBytes(deps.images, owner, deps.quotas, length ?? 0, length);
    try {
      await deps.uploader.upload(id, ctx.req, length, { cover: held.cover });
    } finally {
      held.release();
    }
    ctx.status = 204;
  });

  router.get('/v2/images/:id/file', async (ctx) => {
    const image = await deps.images.require(imageId(ctx));
    if (image.status === 'deactivated') {
      throw imageError('IMAGE_STATE_FORBIDDEN', `image ${image.id} is deactivated`, { image_id: image.id });
    }
    if (image.status !== 'active') {
      ctx.status = 204;
      return;
    }
    const file = await deps.images.fileOf(image.id);
    if (file) {
      await serveFile(ctx, deps.blobs, image, file);
      return;
    }
    const blobs = await deps.images.blobsOf(image.id);
    if (!blobs) {
      ctx.status = 204;
      return;
    }
    // A generated archive has no cheap random access: Range is ignored and the whole is sent.
    ctx.status = 200;
    ctx.type = 'application/octet-stream';
    if (image.checksum) ctx.set('content-md5', image.checksum);
    if (ctx.method !== 'HEAD') ctx.body = createDockerArchive(deps.blobs, blobs);
    ctx.length = image.size ?? archiveSize(blobs);
  });
}
