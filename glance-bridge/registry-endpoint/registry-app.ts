import Koa from 'koa';
import { BerthError } from '../../common/errors.js';
import { logAppErrors } from '../../common/koa.js';
import type { TokenValidator } from '../../common/keystone/index.js';
import type { Logger } from '../../common/log.js';
import { parseRange } from '../store/range.js';
import { isDigest, type BlobStore } from '../store/blobs.js';
import type { ImageRepository } from '../store/images.js';
import type { ImageRecord } from '../store/types.js';
import { MemberRepository } from '../store/members.js';
import { RegistryNames } from './names.js';
import { readableBy, registryCaller } from './registry-auth.js';

/** Counts of what the endpoint served (GETs only; HEADs move no data). */
export interface RegistryEndpointStats {
  manifestsServed: number;
  blobsServed: number;
  blobBytesServed: number;
}

export interface RegistryEndpointDeps {
  images: ImageRepository;
  blobs: BlobStore;
  log: Logger;
  /** With Keystone: anonymous pulls see public and community images, tokens their project's (registry-auth.ts). */
  validator?: TokenValidator;
}

type RegistryCode = 'NAME_UNKNOWN' | 'MANIFEST_UNKNOWN' | 'BLOB_UNKNOWN' | 'UNSUPPORTED' | 'RANGE_INVALID' | 'UNAUTHORIZED' | 'UNKNOWN';

/** An error in the distribution spec's body shape, which docker prints to the user. */
class RegistryError extends Error {
  constructor(
    readonly status: number,
    readonly code: RegistryCode,
    message: string,
    readonly detail: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

// Repository name components of the distribution spec, joined by slashes.
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const ROUTE = new RegExp(`^/v2/(${COMPONENT}(?:/${COMPONENT})*)/(manifests|blobs)/([^/]+)$`);

/**
 * A read-only Registry HTTP API v2 over the store, so a host's dockerd can `docker pull` an
 * imported image and fetch only the layers it lacks. Served on its own listener: docker's `/v2/…`
 * paths and Glance's `/v2/images` share a prefix. In noauth every image is served: the endpoint
 * is for the compute hosts, and listens on loopback by default.
 */
export function createRegistryApp(deps: RegistryEndpointDeps): { app: Koa; stats: RegistryEndpointStats } {
  const stats: RegistryEndpointStats = { manifestsServed: 0, blobsServed: 0, blobBytesServed: 0 };
  const names = new RegistryNames(deps.images);
  const members = new MemberRepository(deps.images.db);
  const app = new Koa();
  logAppErrors(app, deps.log);

  const findImages = async (ctx: Koa.Context, name: string): Promise<ImageRecord[]> => {
    let found = await names.imagesNamed(name);
    if (deps.validator) found = await readableBy(await registryCaller(ctx, deps.validator), found, members, names.isIdName(name));
    if (!found.length) throw new RegistryError(404, 'NAME_UNKNOWN', `repository ${name} is not known to this registry`, { name });
    return found;
  };

  const serveManifest = async (ctx: Koa.Context, name: string, reference: string): Promise<void> => {
    const image = names.pick(name, await findImages(ctx, name), reference);
    const manifest = image ? await deps.images.manifestOf(image.id) : null;
    if (!manifest) throw new RegistryError(404, 'MANIFEST_UNKNOWN', `manifest ${reference} of ${name} is not known to this registry`, { name, reference });
    ctx.status = 200;
    ctx.type = manifest.media_type;
    ctx.set('docker-content-digest', manifest.digest);
    ctx.set('etag', `"${manifest.digest}"`);
    if (ctx.method === 'GET') {
      ctx.body = await deps.blobs.open(manifest.digest);
      stats.manifestsServed++;
    }
    ctx.length = manifest.size;
  };

  const belongsTo = async (images: ImageRecord[], digest: string): Promise<boolean> => {
    for (const image of images) {
      const blobs = await deps.images.blobsOf(image.id);
      if (blobs && (blobs.config.digest === digest || blobs.layers.some((l) => l.digest === digest))) return true;
      if ((await deps.images.manifestOf(image.id))?.digest === digest) return true;
    }
    return false;
  };

  const serveBlob = async (ctx: Koa.Context, name: string, digest: string): Promise<void> => {
    const images = await findImages(ctx, name);
    const size = isDigest(digest) && (await belongsTo(images, digest)) ? await deps.blobs.size(digest) : null;
    if (size === null) throw new RegistryError(404, 'BLOB_UNKNOWN', `blob ${digest} is not in repository ${name}`, { digest });
    ctx.set('docker-content-digest', digest);
    ctx.set('accept-ranges', 'bytes');
    ctx.set('etag', `"${digest}"`);
    ctx.type = 'application/octet-stream';
    const range = parseRange(ctx.get('range') || undefined, size);
    if (range === 'unsatisfiable') {
      ctx.set('content-range', `bytes */${size}`);
      throw new RegistryError(416, 'RANGE_INVALID', `range ${ctx.get('range')} is outside the ${size} bytes of blob ${digest}`, { size });
    }
    ctx.status = range ? 206 : 200;
    if (range) ctx.set('content-range', `bytes ${range.start}-${range.end}/${size}`);
    const length = range ? range.end - range.start + 1 : size;
    if (ctx.method === 'GET') {
      ctx.body = await deps.blobs.open(digest, range ?? undefined);
      stats.blobsServed++;
      stats.blobBytesServed += length;
    }
    ctx.length = length;
  };

  app.use(async (ctx, next) => {
    ctx.set('docker-distribution-api-version', 'registry/2.0');
    try {
      await next();
    } catch (err) {
      const known =
        err instanceof RegistryError
          ? err
          : err instanceof BerthError && err.status === 401
            ? new RegistryError(401, 'UNAUTHORIZED', err.message)
            : err instanceof BerthError && err.retryable
              ? new RegistryError(err.status, 'UNKNOWN', err.message)
              : null;
      if (!known) deps.log.error({ err, path: ctx.path }, 'registry endpoint failed');
      ctx.status = known?.status ?? 500;
      ctx.body = {
        errors: [{ code: known?.code ?? 'UNKNOWN', message: known?.message ?? 'internal error (see the image service log)', detail: known?.detail ?? {} }],
      };
    }
  });

  app.use(async (ctx) => {
    const readOnly = ctx.method === 'GET' || ctx.method === 'HEAD';
    if (ctx.path === '/v2/' || ctx.path === '/v2') {
      if (!readOnly) throw new RegistryError(405, 'UNSUPPORTED', `${ctx.method} is not supported by this read-only registry`);
      ctx.status = 200;
      ctx.body = {};
      return;
    }
    const m = ROUTE.exec(ctx.path);
    if (!m) throw new RegistryError(404, 'UNSUPPORTED', `${ctx.path} is not served by this read-only registry`);
    if (!readOnly) throw new RegistryError(405, 'UNSUPPORTED', `${ctx.method} is not supported by this read-only registry`);
    const [, name, kind, reference] = m as unknown as [string, string, string, string];
    let ref: string;
    try {
      ref = decodeURIComponent(reference);
    } catch {
      throw new RegistryError(404, kind === 'manifests' ? 'MANIFEST_UNKNOWN' : 'BLOB_UNKNOWN', `${reference} is not a valid reference`);
    }
    if (kind === 'manifests') await serveManifest(ctx, name, ref);
    else await serveBlob(ctx, name, ref);
  });

  return { app, stats };
}
