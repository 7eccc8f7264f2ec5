import type { Router } from '@koa/router';
import { BerthError } from '../../common/errors.js';

/**
 * Glance's metadata definitions catalog, read-only and empty: what a Glance answers whose operator
 * never loaded the definitions (`glance-manage db_load_metadefs`), as the test cloud's. Writes are
 * 405: the catalog is not kept here.
 */
const missing = (namespace: string): BerthError =>
  new BerthError('NOT_FOUND', `Metadata definition namespace=${namespace} was not found.`, { status: 404, details: { namespace } });

export function addMetadefRoutes(router: Router): void {
  router.get('/v2/metadefs/namespaces', (ctx) => {
    const marker = ctx.query.marker;
    if (typeof marker === 'string') throw missing(marker);
    const query = new URLSearchParams(ctx.querystring).toString();
    ctx.body = { namespaces: [], schema: '/v2/schemas/metadefs/namespaces', first: `/v2/metadefs/namespaces${query ? `?${query}` : ''}` };
  });
  router.get('/v2/metadefs/resource_types', (ctx) => { ctx.body = { resource_types: [] }; });
  const none = (ctx: { params: Record<string, string | undefined> }): never => { throw missing(String(ctx.params.namespace)); };
  router.get('/v2/metadefs/namespaces/:namespace', none);
  for (const part of ['objects', 'properties', 'tags', 'resource_types']) {
    router.get(`/v2/metadefs/namespaces/:namespace/${part}`, none);
    router.get(`/v2/metadefs/namespaces/:namespace/${part}/:name`, none);
  }
}
