import Koa from 'koa';
import { Transform } from 'node:stream';
import { errorMiddleware, logAppErrors, requestIdMiddleware } from '../common/koa.js';
import type { Logger } from '../common/log.js';
import { Counter, Histogram, MetricsRegistry } from '../common/metrics.js';
import { statusRoutes, type ReadinessCheck } from '../common/status.js';
import { keystoneAuthMiddleware, type KeystoneAuth } from './policy/auth.js';
import { trailingSlashMiddleware, versionsMiddleware } from './api/discovery.js';
import { imageRoutes } from './api/images.js';
import type { MetadefCatalog } from './metadefs/catalog.js';
import type { WebFetchOptions } from './api/web-download.js';
import type { ExportTarget } from './archive/export.js';
import type { Importer } from './import/importer.js';
import type { ImageUploader } from './import/upload.js';
import type { ProjectQuotas } from './policy/quotas.js';
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
  /** Per-project image count and byte limits; none: unlimited. */
  quotas?: ProjectQuotas;
  /** `[image_store] image_property_quota`: most custom properties per image; default Glance's 128. */
  propertyQuota?: number;
  /** Served at /metrics; made here when not given. */
  metrics?: ImageServiceMetrics;
  /** What /readyz asks (database, blob directory); none: always ready. */
  readiness?: ReadinessCheck[];
  /** Keystone token validation (`auth_strategy = keystone`); none: noauth. */
  auth?: KeystoneAuth;
  /** The Glance that `POST /v2/images/{id}/actions/export` pushes to; none: exports are refused. */
  exportTarget?: ExportTarget;
  /** How `web-download` fetches `http(s)://` URLs; none: only `docker://` references are imported. */
  web?: WebFetchOptions;
  /** The metadata definitions catalog served read-only at /v2/metadefs; none: an empty one. */
  metadefs?: MetadefCatalog;
}

/** What the image service counts. Imports are counted by main.ts, which owns the importer. */
export interface ImageServiceMetrics {
  registry: MetricsRegistry;
  imports: Counter;
  importBytes: Counter;
  importDuration: Histogram;
  cacheHits: Counter;
  uploads: Counter;
  downloads: Counter;
  downloadBytes: Counter;
}

const IMPORT_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

export function createImageServiceMetrics(): ImageServiceMetrics {
  const registry = new MetricsRegistry();
  return {
    registry,
    imports: registry.register(
      new Counter(
        'berth_image_imports_total',
        'Registry imports by outcome: active, killed, rejected (refused before any fetch) or existing (answered by an image already imported or importing).',
      ),
    ),
    importBytes: registry.register(new Counter('berth_image_import_bytes_total', 'Bytes of the images imports made active.')),
    importDuration: registry.register(
      new Histogram('berth_image_import_duration_seconds', 'Time from an import request to its image being active or killed, by outcome.', IMPORT_BUCKETS),
    ),
    cacheHits: registry.register(new Counter('berth_image_import_cache_hits_total', 'Import requests answered by an existing image, with nothing fetched.')),
    uploads: registry.register(new Counter('berth_image_uploads_total', 'Image data uploads (PUT /v2/images/{id}/file) by HTTP status.')),
    downloads: registry.register(new Counter('berth_image_downloads_total', 'Image data downloads (GET /v2/images/{id}/file) by HTTP status.')),
    downloadBytes: registry.register(new Counter('berth_image_download_bytes_total', 'Bytes of image data sent.')),
  };
}

/**
 * The image service's HTTP API: a Glance v2 subset. With `auth`, every call but the status and
 * discovery paths needs a Keystone token; without it, callers name their project (noauth).
 */
export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  logAppErrors(app, deps.log);
  const routes = imageRoutes(deps);
  const metrics = deps.metrics ?? createImageServiceMetrics();
  app.use(requestIdMiddleware(deps.log));
  app.use(dataTransferMetrics(metrics));
  app.use(errorMiddleware(deps.log));
  app.use(async (ctx, next) => {
    // oslo.middleware's healthcheck path, which load balancers in front of Glance probe.
    if (ctx.path === '/healthcheck' && ctx.method === 'GET') {
      ctx.body = 'OK';
      return;
    }
    await next();
  });
  app.use(statusRoutes({ registry: metrics.registry, checks: deps.readiness ?? [], log: deps.log }));
  app.use(versionsMiddleware());
  if (deps.auth) app.use(keystoneAuthMiddleware(deps.auth));
  app.use(trailingSlashMiddleware());
  app.use(routes.routes());
  app.use(routes.allowedMethods());
  return app;
}

const IMAGE_FILE = /^\/v2\/images\/[^/]+\/file$/;

/** Outside the error middleware, so failed transfers are counted with the status they got. */
function dataTransferMetrics(m: ImageServiceMetrics): Koa.Middleware {
  return async (ctx, next) => {
    if (!IMAGE_FILE.test(ctx.path) || (ctx.method !== 'GET' && ctx.method !== 'PUT')) return next();
    await next();
    if (ctx.method === 'PUT') {
      m.uploads.inc({ status: String(ctx.status) });
      return;
    }
    m.downloads.inc({ status: String(ctx.status) });
    const body: unknown = ctx.body;
    if (body && typeof (body as NodeJS.ReadableStream).pipe === 'function') {
      const length = ctx.response.length;
      // Counted as sent, so an aborted download counts only what left.
      ctx.body = (body as NodeJS.ReadableStream).pipe(
        new Transform({
          transform(chunk: Buffer, _enc, done) {
            m.downloadBytes.inc({}, chunk.length);
            done(null, chunk);
          },
        }),
      );
      if (length !== undefined) ctx.length = length;
    }
  };
}

/**
 * Counts imports around the importer's two entry points, leaving the importer itself unaware of
 * metrics. An import answered by an image made before the request is a cache hit.
 */
export function measureImports(importer: Importer, m: ImageServiceMetrics): void {
  const settle = (started: number, done: Promise<{ status: string; size: number | null } | null>): void => {
    void done.then(
      (image) => {
        const outcome = image?.status === 'active' ? 'active' : 'killed';
        m.imports.inc({ outcome });
        m.importDuration.observe({ outcome }, (Date.now() - started) / 1000);
        if (outcome === 'active') m.importBytes.inc({}, image?.size ?? 0);
      },
      () => undefined,
    );
  };
  const rejected = (err: unknown): never => {
    m.imports.inc({ outcome: 'rejected' });
    throw err;
  };
  const startImport = importer.startImport.bind(importer);
  importer.startImport = async (source, opts) => {
    const started = Date.now();
    const result = await startImport(source, opts).catch(rejected);
    if (result.image.created_at.getTime() < started) {
      m.imports.inc({ outcome: 'existing' });
      m.cacheHits.inc();
    } else settle(started, result.done);
    return result;
  };
  const importInto = importer.importInto.bind(importer);
  importer.importInto = async (imageId, source) => {
    const started = Date.now();
    const result = await importInto(imageId, source).catch(rejected);
    settle(started, result.done);
    return result;
  };
}
