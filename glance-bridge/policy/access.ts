import type Koa from 'koa';
import { invalidInput } from '../../common/errors.js';
import { isUuid } from '../../common/koa.js';
import { imageError } from '../errors.js';
import type { MemberRepository, MemberStatus } from '../store/members.js';
import type { ImageRepository } from '../store/images.js';
import type { ImageRecord } from '../store/types.js';

/**
 * Who is asking. noauth, as Glance's own noauth pipeline: the project comes from `X-Project-Id`
 * (or the older `X-Tenant-Id`), else the default project; `X-Roles` containing `admin` makes an
 * admin. With Keystone, the auth middleware (auth.ts) has set the caller from the token already.
 */
export interface Caller {
  project: string;
  admin: boolean;
}

export function callerOf(ctx: Koa.Context, defaultProject: string): Caller {
  const authenticated = ctx.state.caller as Caller | undefined;
  if (authenticated) return authenticated;
  const project = (ctx.get('x-project-id') || ctx.get('x-tenant-id')).trim() || defaultProject;
  if (project.length > 255) throw invalidInput('X-Project-Id has at most 255 characters', { field: 'X-Project-Id' });
  const roles = ctx
    .get('x-roles')
    .split(',')
    .map((r) => r.trim().toLowerCase());
  return { project, admin: roles.includes('admin') };
}

const owns = (image: ImageRecord, caller: Caller) => caller.admin || image.owner === caller.project;

/**
 * Glance's visibility (glance/db/sqlalchemy/api.py, is_image_visible): public and community
 * images are readable by all; private ones by their owner; shared ones by their owner and their
 * members, whatever the member's status. Admins read everything.
 */
export function canRead(image: ImageRecord, caller: Caller, membership: MemberStatus | null): boolean {
  if (owns(image, caller) || image.visibility === 'public' || image.visibility === 'community') return true;
  return image.visibility === 'shared' && membership !== null;
}

export type VisibilityFilter = 'public' | 'private' | 'shared' | 'community' | 'all' | undefined;
export type MemberStatusFilter = MemberStatus | 'all';

/**
 * What a listing shows, as Glance lists: shared images of other projects only where the caller's
 * membership has `memberStatus` (default accepted); community images of other projects only
 * when asked for (`visibility=community` or `all`), though they stay readable by id.
 */
export function listedFor(
  caller: Caller,
  memberships: ReadonlyMap<string, MemberStatus>,
  filter: VisibilityFilter,
  memberStatus: MemberStatusFilter = 'accepted',
): (image: ImageRecord) => boolean {
  return (image) => {
    if (image.visibility === 'community') return filter === 'community' || filter === 'all' || (filter === undefined && image.owner === caller.project);
    if (owns(image, caller) || image.visibility === 'public') return true;
    const status = memberships.get(image.id);
    return image.visibility === 'shared' && status !== undefined && (memberStatus === 'all' || status === memberStatus);
  };
}

export interface AccessDeps {
  images: ImageRepository;
  members: MemberRepository;
  defaultProject: string;
}

const READ_METHODS = new Set(['GET', 'HEAD']);

/**
 * Router parameter middleware for `:id`: an image the caller may not read is not found (404, so
 * its existence does not leak); one it may read but does not own cannot be changed (403).
 * Member routes decide for themselves: a member changes its own status.
 */
export function imageAccessGuard(deps: AccessDeps) {
  return async (id: string, ctx: Koa.Context, next: Koa.Next): Promise<unknown> => {
    const caller = callerOf(ctx, deps.defaultProject);
    ctx.state.caller = caller;
    if (!isUuid(id)) return next();
    const image = await deps.images.get(id);
    if (!image) return next();
    const membership = image.visibility === 'shared' ? ((await deps.members.get(id, caller.project))?.status ?? null) : null;
    if (!canRead(image, caller, membership)) throw imageError('IMAGE_NOT_FOUND', `no image with id ${id}`, { image_id: id });
    const memberRoute = /\/members(\/|$)/.test(ctx.path);
    if (!READ_METHODS.has(ctx.method) && !memberRoute && !owns(image, caller)) {
      throw imageError('IMAGE_FORBIDDEN', `You are not permitted to modify image ${id}: it belongs to another project`, { image_id: id });
    }
    return next();
  };
}

export function callerIn(ctx: Koa.Context): Caller {
  return ctx.state.caller as Caller;
}

export { owns as ownsImage };
