import { Router } from '@koa/router';
import { invalidInput } from '../../common/errors.js';
import { readJsonBody } from '../../common/koa.js';
import type { Importer } from '../import/importer.js';
import type { ImageUploader } from '../import/upload.js';
import { MemberRepository, MEMBER_STATUSES } from '../store/members.js';
import { callerOf, imageAccessGuard, type MemberStatusFilter, type VisibilityFilter } from '../policy/access.js';
import { addDataRoutes } from './data.js';
import { addDiscoveryRoutes } from './discovery.js';
import { addExportRoutes } from './export.js';
import type { Logger } from '../../common/log.js';
import type { ExportTarget } from '../archive/export.js';
import { addMemberRoutes } from './members.js';
import { createCounted, type ProjectQuotas } from '../policy/quotas.js';
import { checkPropertyQuota } from '../policy/property-quota.js';
import { addMetadataRoutes } from './metadata.js';
import { addMetadefRoutes } from './metadefs.js';
import { MetadefCatalog } from '../metadefs/catalog.js';
import { imageId } from './params.js';
import type { BlobStore } from '../store/blobs.js';
import type { ImageRepository } from '../store/images.js';
import type { ImageRecord } from '../store/types.js';
import type { Visibility } from '../store/models.js';
import { checkOwner, checkProperty, checkVisibility } from '../policy/glance-policy.js';
import { parseCreateImage, parseListQuery, VISIBILITIES } from './validate.js';
import { toGlanceImage } from './views.js';
import { parseWebUri, startWebDownload, type WebFetchOptions } from './web-download.js';

export interface ImageRoutesDeps {
  images: ImageRepository;
  blobs: BlobStore;
  importer: Importer;
  uploader: ImageUploader;
  maxBodyBytes: number;
  defaultProject: string;
  quotas?: ProjectQuotas;
  /** `[image_store] image_property_quota`; default Glance's 128. */
  propertyQuota?: number;
  log: Logger;
  exportTarget?: ExportTarget;
  /** How `web-download` fetches `http(s)://` URLs; none: only `docker://` references are imported. */
  web?: WebFetchOptions;
  /** The metadata definitions catalog (`[image_store] metadefs_path`); none: an empty one. */
  metadefs?: MetadefCatalog;
}

function memberStatusFilter(raw: unknown): MemberStatusFilter {
  if (raw === undefined) return 'accepted';
  if (raw === 'all' || (MEMBER_STATUSES as readonly unknown[]).includes(raw)) return raw as MemberStatusFilter;
  throw invalidInput(`member_status must be all or one of ${MEMBER_STATUSES.join(', ')}`, { field: 'member_status' });
}

function nextLink(query: Record<string, string | string[] | undefined>, marker: string): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (typeof v === 'string' && k !== 'marker') params.set(k, v);
  params.set('marker', marker);
  return `/v2/images?${params.toString()}`;
}

/** Glance v2 images API (https://docs.openstack.org/api-ref/image/v2/), plus Berth's one-step import. */
export function imageRoutes(deps: ImageRoutesDeps): Router {
  const router = new Router();
  const view = (image: ImageRecord) => toGlanceImage(image, deps.importer.progress(image.id));
  const members = new MemberRepository(deps.images.db);
  router.param('id', imageAccessGuard({ images: deps.images, members, defaultProject: deps.defaultProject }));
  addDiscoveryRoutes(router);
  addMetadefRoutes(router, deps.metadefs ?? new MetadefCatalog(), (ctx) => callerOf(ctx, deps.defaultProject));
  addDataRoutes(router, deps);
  addExportRoutes(router, deps);
  addMetadataRoutes(router, { ...deps, view });
  addMemberRoutes(router, { images: deps.images, members, maxBodyBytes: deps.maxBodyBytes });

  router.get('/v2/images', async (ctx) => {
    const query = parseListQuery(ctx.query);
    const caller = callerOf(ctx, deps.defaultProject);
    const visibility = (ctx.query.visibility === 'all' ? 'all' : query.filters.visibility) as VisibilityFilter;
    const scope = { project: caller.project, admin: caller.admin, visibility, memberStatus: memberStatusFilter(ctx.query.member_status) };
    const { images, more } = await deps.images.list({ ...query, scope });
    const last = images[images.length - 1];
    ctx.body = {
      images: images.map(view),
      schema: '/v2/schemas/images',
      first: '/v2/images',
      ...(more && last ? { next: nextLink(ctx.query, last.id) } : {}),
    };
  });

  router.post('/v2/images', async (ctx) => {
    const caller = callerOf(ctx, deps.defaultProject);
    const init = parseCreateImage(await readJsonBody(ctx, deps.maxBodyBytes), caller.project);
    checkPropertyQuota(init.properties ?? {}, {}, deps.propertyQuota, { next: init.tags ?? [], before: [] });
    checkOwner(caller, init.owner);
    checkVisibility(caller, init.visibility);
    for (const key of Object.keys(init.properties ?? {})) checkProperty(caller, key);
    const image = await createCounted(deps.images, init.owner ?? caller.project, deps.quotas, () => deps.images.create(init));
    ctx.status = 201;
    ctx.set('location', `/v2/images/${image.id}`);
    ctx.body = view(image);
  });

  router.get('/v2/images/:id', async (ctx) => {
    ctx.body = view(await deps.images.require(imageId(ctx)));
  });

  router.delete('/v2/images/:id', async (ctx) => {
    await deps.images.markDeleted(imageId(ctx));
    ctx.status = 204;
  });

  router.post('/v2/images/:id/import', async (ctx) => {
    const id = imageId(ctx);
    const body = (await readJsonBody(ctx, deps.maxBodyBytes)) as { method?: { name?: unknown; uri?: unknown } } | undefined;
    const method = body?.method;
    if (typeof method !== 'object' || method === null) throw invalidInput('body must be {"method": {"name": "web-download", "uri": "docker://..."}}');
    if (method.name !== 'web-download')
      throw invalidInput(`import method ${JSON.stringify(method.name)} is not supported (supported: web-download)`, { field: 'method.name' });
    if (typeof method.uri !== 'string') throw invalidInput('method.uri must be a docker:// reference or an http(s):// URL', { field: 'method.uri' });
    if (/^https?:\/\//i.test(method.uri)) {
      if (!deps.web) throw invalidInput('this image service imports docker:// references only', { field: 'method.uri' });
      const { done } = await startWebDownload({ ...deps, web: deps.web }, id, parseWebUri(method.uri));
      void done.catch((err: unknown) => deps.log.error({ err, image_id: id }, 'web-download could not mark its image'));
    } else {
      await deps.importer.importInto(id, method.uri);
    }
    ctx.status = 202;
  });

  router.post('/v2/berth/import', async (ctx) => {
    const body = (await readJsonBody(ctx, deps.maxBodyBytes)) as { source?: unknown; name?: unknown; visibility?: unknown } | undefined;
    if (typeof body?.source !== 'string')
      throw invalidInput('body must be {"source": "docker://HOST/REPO:TAG", "name": "...", "visibility": "..."}', { field: 'source' });
    if (body.name !== undefined && (typeof body.name !== 'string' || body.name.length > 255))
      throw invalidInput('name must be a string of at most 255 characters', { field: 'name' });
    if (body.visibility !== undefined && !(VISIBILITIES as unknown[]).includes(body.visibility))
      throw invalidInput(`visibility must be one of ${VISIBILITIES.join(', ')}`, { field: 'visibility' });
    // Into the caller's own project, always: a project cannot import into the default project
    // (whose images the operator curates) or any other. An admin's import is public by default,
    // as operators seed the cloud's catalog this way; a project's is shared (Glance's default).
    const caller = callerOf(ctx, deps.defaultProject);
    const visibility = (body.visibility ?? (caller.admin ? 'public' : 'shared')) as Visibility;
    checkVisibility(caller, visibility);
    const { image } = await deps.importer.startImport(body.source, {
      owner: caller.project,
      visibility,
      ...(body.name !== undefined ? { name: body.name as string } : {}),
    });
    ctx.status = 202;
    ctx.set('location', `/v2/images/${image.id}`);
    ctx.body = { image: view(image) };
  });

  return router;
}
