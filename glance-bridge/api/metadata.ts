import type Koa from 'koa';
import type { Router } from '@koa/router';
import { commonError, invalidInput } from '../../common/errors.js';
import { imageError } from '../errors.js';
import type { ImageRepository } from '../store/images.js';
import type { ImageRecord } from '../store/types.js';
import { callerIn } from '../policy/access.js';
import { imageId } from './params.js';
import { imagePatchFrom, JSON_PATCH_TYPE, JSON_PATCH_V20_TYPE, patchDialect } from './patch.js';
import { checkPropertyQuota, MAX_TAGS } from '../policy/property-quota.js';
import { imageSchema, imagesSchema } from './schemas.js';

export interface MetadataRoutesDeps {
  images: ImageRepository;
  maxBodyBytes: number;
  /** `[image_store] image_property_quota`; default Glance's 128. */
  propertyQuota?: number;
  view: (image: ImageRecord) => unknown;
}

/** A PATCH body (either JSON patch media type, checked by the route) of at most `limit` bytes. */
async function readPatchBody(ctx: Koa.Context, limit: number): Promise<unknown> {
  const tooLarge = () => commonError('BODY_TOO_LARGE', `request body over ${limit} bytes`);
  if (Number(ctx.get('content-length') || '0') > limit) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw tooLarge();
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw invalidInput('request body is not valid JSON');
  }
}

/** Deactivation as Glance allows it: only between active and deactivated; repeating is a no-op. */
async function setActivation(images: ImageRepository, id: string, to: 'active' | 'deactivated'): Promise<void> {
  const image = await images.require(id);
  if (image.status === to) return;
  const from = to === 'active' ? 'deactivated' : 'active';
  if (image.status !== from) {
    const verb = to === 'active' ? 'reactivate' : 'deactivate';
    throw imageError('IMAGE_STATE_FORBIDDEN', `Not allowed to ${verb} image in status '${image.status}'`, { image_id: id, status: image.status });
  }
  await images.transition(id, to);
}

/** PATCH, tags, deactivate/reactivate and the schemas glanceclient builds its model from. */
export function addMetadataRoutes(router: Router, deps: MetadataRoutesDeps): void {
  router.get('/v2/schemas/image', (ctx) => {
    ctx.body = imageSchema();
  });
  router.get('/v2/schemas/images', (ctx) => {
    ctx.body = imagesSchema();
  });

  router.patch('/v2/images/:id', async (ctx) => {
    const id = imageId(ctx);
    const dialect = patchDialect(ctx.get('content-type'));
    if (!dialect) {
      const type = ctx.get('content-type').split(';')[0]!.trim().toLowerCase();
      throw commonError('UNSUPPORTED_MEDIA_TYPE', `PATCH needs content-type ${JSON_PATCH_TYPE} (or ${JSON_PATCH_V20_TYPE}), not ${type || 'none'}`);
    }
    const body = await readPatchBody(ctx, deps.maxBodyBytes);
    const image = await deps.images.require(id);
    const patch = imagePatchFrom(body, image, callerIn(ctx), dialect);
    checkPropertyQuota(patch.properties ?? image.properties, image.properties, deps.propertyQuota, { next: patch.tags ?? image.tags, before: image.tags });
    ctx.body = deps.view(await deps.images.update(id, image.status, patch));
  });

  router.put('/v2/images/:id/tags/:tag', async (ctx) => {
    const id = imageId(ctx);
    const tag = String(ctx.params.tag);
    if (tag.length > 255) throw invalidInput('a tag has at most 255 characters', { field: 'tag' });
    const image = await deps.images.require(id);
    if (!image.tags.includes(tag)) {
      if (image.tags.length >= MAX_TAGS) throw imageError('TOO_MANY_TAGS', `an image has at most ${MAX_TAGS} tags`, { image_id: id });
      await deps.images.update(id, image.status, { tags: [...image.tags, tag] });
    }
    ctx.status = 204;
  });

  router.delete('/v2/images/:id/tags/:tag', async (ctx) => {
    const id = imageId(ctx);
    const tag = String(ctx.params.tag);
    const image = await deps.images.require(id);
    if (!image.tags.includes(tag)) throw imageError('TAG_NOT_FOUND', `image ${id} has no tag ${tag}`, { image_id: id, tag });
    await deps.images.update(id, image.status, { tags: image.tags.filter((t) => t !== tag) });
    ctx.status = 204;
  });

  router.post('/v2/images/:id/actions/deactivate', async (ctx) => {
    await setActivation(deps.images, imageId(ctx), 'deactivated');
    ctx.status = 204;
  });

  router.post('/v2/images/:id/actions/reactivate', async (ctx) => {
    await setActivation(deps.images, imageId(ctx), 'active');
    ctx.status = 204;
  });
}
