import Koa from 'koa';
import { errorMiddleware, requestIdMiddleware } from '../common/koa.js';
import type { Logger } from '../common/log.js';
import { imageRoutes } from './api/images.js';
import type { Importer } from './importer.js';
import type { ImageUploader } from './upload.js';
import type { BlobStore } from './store/blobs.js';
import type { ImageRepository } from './store/images.js';

export interface AppDeps {
  images: ImageRepository;
  blobs: BlobStore;
  importer: Importer;
  uploader: ImageUploader;
  log: Logger;
  maxBodyBytes: number;
  /** Owner of everything in noauth mode. */
  defaultProject: string;
}

/**
 * The image service's HTTP API: a Glance v2 subset. noauth for now: every caller acts as the
 * default project with admin rights, so X-Auth-Token is accepted and ignored.
 */
export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  const routes = imageRoutes(deps);
  app.use(requestIdMiddleware(deps.log));
  app.use(errorMiddleware(deps.log));
  app.use(async (ctx, next) => {
    // oslo.middleware's healthcheck path, which load balancers in front of Glance probe.
    if (ctx.path === '/healthcheck' && ctx.method === 'GET') {
      ctx.body = 'OK';
      return;
    }
    await next();
  });
  app.use(routes.routes());
  app.use(routes.allowedMethods());
  return app;
}
