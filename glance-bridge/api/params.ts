import type Koa from 'koa';
import { isUuid } from '../../common/koa.js';
import { imageError } from '../errors.js';

export function imageId(ctx: Koa.Context): string {
  const id = String(ctx.params.id ?? '');
  // A malformed id names no image: 404, as Glance answers.
  if (!isUuid(id)) throw imageError('IMAGE_NOT_FOUND', `no image with id ${id}`, { image_id: id });
  return id;
}
