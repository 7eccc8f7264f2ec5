import type Koa from 'koa';
import type { Router } from '@koa/router';
import { commonError, type BerthError } from '../../common/errors.js';

/**
 * What Glance Zed answers about itself: the versions document, `/v2/info/import` and
 * `/v2/info/stores`, and the features Berth leaves off (the cache API, image locations) answered
 * as a Glance with them off answers.
 */

/** The import methods `POST /v2/images/{id}/import` takes (see images.ts). */
export const IMPORT_METHODS = ['web-download'] as const;

/** The one store every image's data lives in, reported as the default backend. */
export const STORE_ID = 'berth';

/**
 * Glance Zed's versions with one default backend (`enabled_backends`, which Berth's single store
 * stands for) and no `image_cache_dir`: v2.15 current, v2.14 and v2.16 (the cache API) absent.
 */
const VERSIONS: Array<[string, 'CURRENT' | 'SUPPORTED']> = [
  ['v2.15', 'CURRENT'],
  ...['v2.13', 'v2.12', 'v2.11', 'v2.10', 'v2.9', 'v2.8', 'v2.7', 'v2.6', 'v2.5', 'v2.4', 'v2.3', 'v2.2', 'v2.1', 'v2.0'].map((id): [string, 'SUPPORTED'] => [
    id,
    'SUPPORTED',
  ]),
];

export function versionsDocument(origin: string): { versions: Array<{ id: string; status: string; links: Array<{ rel: string; href: string }> }> } {
  const href = `${origin.replace(/\/+$/, '')}/v2/`;
  return { versions: VERSIONS.map(([id, status]) => ({ id, status, links: [{ rel: 'self', href }] })) };
}

const notFound = (message: string): BerthError => commonError('NOT_FOUND', message);

/** Glance's message for every cache call where `image_cache_dir` is unset. */
export const CACHE_OFF = 'Caching via API is not supported at this site.';

/**
 * Version discovery at `/` (300 Multiple Choices, as an unversioned request) and `/versions`
 * (200); both are open paths in policy/auth.ts. `/versions/` answers too, as Glance's does.
 */
export function versionsMiddleware(): Koa.Middleware {
  return async (ctx, next) => {
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') return next();
    if (ctx.path === '/') ctx.status = 300;
    else if (ctx.path === '/versions' || ctx.path === '/versions/') ctx.status = 200;
    else return next();
    ctx.body = versionsDocument(`${ctx.protocol}://${ctx.host}`);
  };
}

/**
 * Glance's routes match no trailing slash: `/v2/images/` (an empty id) is 404, not the collection
 * (@koa/router, not strict, would answer it as `/v2/images`).
 */
export function trailingSlashMiddleware(): Koa.Middleware {
  return async (ctx, next) => {
    if (ctx.path.startsWith('/v2/') && ctx.path.endsWith('/')) throw notFound(`no resource at ${ctx.path}`);
    return next();
  };
}

/** `/v2/info/*` and the cache API as a Glance without an image cache answers it. */
export function addDiscoveryRoutes(router: Router): void {
  router.get('/v2/info/import', (ctx) => {
    ctx.body = { 'import-methods': { description: 'Import methods available.', type: 'array', value: [...IMPORT_METHODS] } };
  });
  router.get('/v2/info/stores', (ctx) => {
    ctx.body = { stores: [{ id: STORE_ID, default: 'true' }] };
  });
  // Glance routes GET and DELETE /v2/cache and DELETE and PUT /v2/cache/{id} to a controller that
  // answers 404 while the cache is off; any other method is 405.
  const off = (): never => {
    throw notFound(CACHE_OFF);
  };
  router.get('/v2/cache', off);
  router.delete('/v2/cache', off);
  router.put('/v2/cache/:image', off);
  router.delete('/v2/cache/:image', off);
}
