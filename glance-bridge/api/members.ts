import type { Router } from '@koa/router';
import { invalidInput } from '../../common/errors.js';
import { readJsonBody } from '../../common/koa.js';
import { imageError } from '../errors.js';
import { MEMBER_STATUSES, type MemberRecord, type MemberRepository, type MemberStatus } from '../store/members.js';
import type { ImageRepository } from '../store/images.js';
import type { ImageRecord } from '../store/types.js';
import { callerIn, ownsImage, type Caller } from '../policy/access.js';
import { imageId } from './params.js';
import { glanceTime } from './views.js';

export interface MemberRoutesDeps {
  images: ImageRepository;
  members: MemberRepository;
  maxBodyBytes: number;
}

/** Glance's image_member_quota default. */
const MAX_MEMBERS = 128;

function toGlanceMember(m: MemberRecord) {
  return {
    image_id: m.image_id,
    member_id: m.member,
    status: m.status,
    created_at: glanceTime(m.created_at),
    updated_at: glanceTime(m.updated_at),
    schema: '/v2/schemas/member',
  };
}

function requireOwner(image: ImageRecord, caller: Caller, what: string): void {
  if (!ownsImage(image, caller)) throw imageError('MEMBER_FORBIDDEN', `Only the owner of image ${image.id} may ${what}`, { image_id: image.id });
}

/**
 * Image members (https://docs.openstack.org/api-ref/image/v2/#sharing): the owner adds and
 * removes projects, each member alone accepts or rejects; a member sees only its own entry.
 * Reading the image at all was checked by the `:id` guard (policy/access.ts).
 */
export function addMemberRoutes(router: Router, deps: MemberRoutesDeps): void {
  router.get('/v2/schemas/member', (ctx) => {
    ctx.body = {
      name: 'member',
      properties: {
        image_id: { type: 'string' },
        member_id: { type: 'string' },
        status: { type: 'string', enum: MEMBER_STATUSES },
        created_at: { type: 'string' },
        updated_at: { type: 'string' },
        schema: { type: 'string', readOnly: true },
      },
    };
  });
  router.get('/v2/schemas/members', (ctx) => {
    ctx.body = { name: 'members', properties: { members: { type: 'array', items: { $ref: '/v2/schemas/member' } }, schema: { type: 'string' } } };
  });

  router.get('/v2/images/:id/members', async (ctx) => {
    const image = await deps.images.require(imageId(ctx));
    const caller = callerIn(ctx);
    const all = await deps.members.list(image.id);
    const shown = ownsImage(image, caller) ? all : all.filter((m) => m.member === caller.project);
    ctx.body = { members: shown.map(toGlanceMember), schema: '/v2/schemas/members' };
  });

  router.post('/v2/images/:id/members', async (ctx) => {
    const image = await deps.images.require(imageId(ctx));
    requireOwner(image, callerIn(ctx), 'add members');
    if (image.visibility !== 'shared')
      throw imageError('MEMBER_FORBIDDEN', `Only shared images have members (image ${image.id} is ${image.visibility})`, { image_id: image.id });
    const body = (await readJsonBody(ctx, deps.maxBodyBytes)) as { member?: unknown } | undefined;
    const member = body?.member;
    if (typeof member !== 'string' || member === '' || member.length > 255) throw invalidInput('body must be {"member": "<project id>"}', { field: 'member' });
    if ((await deps.members.count(image.id)) >= MAX_MEMBERS)
      throw imageError('QUOTA_EXCEEDED', 'Maximum number of image members exceeded', { image_id: image.id, limit: MAX_MEMBERS });
    ctx.body = toGlanceMember(await deps.members.add(image.id, member));
  });

  router.get('/v2/images/:id/members/:member', async (ctx) => {
    const image = await deps.images.require(imageId(ctx));
    const caller = callerIn(ctx);
    const member = String(ctx.params.member);
    if (!ownsImage(image, caller) && member !== caller.project)
      throw imageError('MEMBER_NOT_FOUND', `${member} is not a member of image ${image.id}`, { image_id: image.id, member });
    ctx.body = toGlanceMember(await deps.members.require(image.id, member));
  });

  router.put('/v2/images/:id/members/:member', async (ctx) => {
    const image = await deps.images.require(imageId(ctx));
    const member = String(ctx.params.member);
    if (member !== callerIn(ctx).project)
      throw imageError('MEMBER_FORBIDDEN', `Only project ${member} may change its membership of image ${image.id}`, { image_id: image.id, member });
    const body = (await readJsonBody(ctx, deps.maxBodyBytes)) as { status?: unknown } | undefined;
    const status = body?.status;
    if (typeof status !== 'string' || !(MEMBER_STATUSES as readonly string[]).includes(status)) {
      throw invalidInput(`status must be one of ${MEMBER_STATUSES.join(', ')}`, { field: 'status' });
    }
    ctx.body = toGlanceMember(await deps.members.setStatus(image.id, member, status as MemberStatus));
  });

  router.delete('/v2/images/:id/members/:member', async (ctx) => {
    const image = await deps.images.require(imageId(ctx));
    requireOwner(image, callerIn(ctx), 'remove members');
    await deps.members.remove(image.id, String(ctx.params.member));
    ctx.status = 204;
  });
}
