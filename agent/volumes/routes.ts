import type { Router } from '@koa/router';
import type Koa from 'koa';
import { invalidInput } from '../../common/errors.js';
import { readJsonBody, requireUuid } from '../../common/koa.js';
import type { VolumeAttach } from '../client/volumes.js';
import { validateMountPoint } from './mount-point.js';
import type { Volumes } from './volumes.js';

type Obj = Record<string, unknown>;

/** `?project_id=`: the project a caller acts for; absent, the operator sees every project. */
function projectOf(ctx: Koa.Context): string | undefined {
  const p = ctx.query.project_id;
  if (p === undefined) return undefined;
  if (typeof p !== 'string' || p === '') throw invalidInput('project_id must be given once, non-empty', { field: 'project_id' });
  return p;
}

function body(v: unknown): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalidInput('the body must be a JSON object', { field: 'body' });
  return v as Obj;
}

/** `?keep_volumes=true` on an instance's delete: a rebuild's, whose next container binds its volumes again. */
export function keepVolumes(ctx: Koa.Context): boolean {
  return ctx.query.keep_volumes === 'true';
}

/**
 * The volumes API (docs/agent-api.md, "Volumes"). `exclusive` runs an attach or detach under
 * the instance's lock, so it never races the instance's create or delete.
 */
export function volumeRoutes(api: Router, volumes: Volumes, exclusive: <T>(uuid: string, op: () => Promise<T>) => Promise<T>, maxBodyBytes: number): void {
  api.get('/volumes', async (ctx) => {
    ctx.body = { volumes: await volumes.list(projectOf(ctx)) };
  });
  api.post('/volumes', async (ctx) => {
    const b = body(await readJsonBody(ctx, maxBodyBytes));
    const volume = await volumes.create({ name: b.name as string, project_id: b.project_id as string, size_gb: b.size_gb as number });
    ctx.status = 201;
    ctx.body = { volume };
  });
  api.get('/volumes/:ref', async (ctx) => {
    ctx.body = { volume: await volumes.get(ctx.params.ref!, projectOf(ctx)) };
  });
  api.delete('/volumes/:ref', async (ctx) => {
    await volumes.delete(ctx.params.ref!, projectOf(ctx));
    ctx.status = 204;
  });
  api.put('/volumes/:ref/attachment', async (ctx) => {
    const b = body(await readJsonBody(ctx, maxBodyBytes));
    const req: VolumeAttach = {
      instance_uuid: requireUuid(b.instance_uuid, 'instance_uuid'),
      project_id: typeof b.project_id === 'string' ? b.project_id : '',
      mount_point: validateMountPoint(b.mount_point),
    };
    if (!req.project_id) throw invalidInput('project_id is required to attach a volume', { field: 'project_id' });
    ctx.body = await exclusive(req.instance_uuid, () => volumes.attach(ctx.params.ref!, req, req.mount_point));
  });
  api.delete('/volumes/:ref/attachment', async (ctx) => {
    const ref = ctx.params.ref!;
    const project = projectOf(ctx);
    const uuid = volumes.instanceOf(ref, project);
    ctx.body = uuid ? await exclusive(uuid, () => volumes.detach(ref, project)) : await volumes.detach(ref, project);
  });
}
