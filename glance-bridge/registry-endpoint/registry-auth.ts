import type Koa from 'koa';
import { BerthError } from '../../common/errors.js';
import type { TokenValidator } from '../../common/keystone/index.js';
import { callerFromToken } from '../policy/auth.js';
import { canRead, listedFor, type Caller } from '../policy/access.js';
import type { MemberRepository } from '../store/members.js';
import type { ImageRecord } from '../store/types.js';

/**
 * Who pulls from the registry endpoint when the image service uses Keystone. Hosts' dockerd pull
 * without credentials, so an anonymous pull sees what Glance shows everyone: public and community
 * images (an admin's registry imports are public, a project's are its own). A Keystone token, as
 * `Authorization: Bearer TOKEN` or as the password of Basic credentials (`docker login -u ANY -p
 * TOKEN` for clients that send them), sees what its project may read through the image API.
 */
export function registryTokenOf(ctx: Koa.Context): string | null {
  const header = ctx.get('authorization');
  const bearer = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
  if (bearer) return bearer;
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(header)?.[1];
  if (basic) {
    const decoded = Buffer.from(basic, 'base64').toString('utf8');
    const password = decoded.slice(decoded.indexOf(':') + 1);
    return decoded.includes(':') && password ? password : null;
  }
  return ctx.get('x-auth-token') || null;
}

/** The caller of a registry request; null: anonymous. Throws 401 for a token Keystone refuses. */
export async function registryCaller(ctx: Koa.Context, validator: TokenValidator): Promise<Caller | null> {
  const token = registryTokenOf(ctx);
  if (!token) return null;
  try {
    return callerFromToken(await validator.validate(token));
  } catch (err) {
    if (err instanceof BerthError && err.status === 401) ctx.set('www-authenticate', 'Basic realm="berth-images"');
    throw err;
  }
}

/**
 * The images among `found` that `caller` may pull. By id (`berth/<id>`) that is what the image
 * API lets it read (GET /v2/images/{id}). By source repository name the name is not the
 * caller's choice of image but the store's, so only what the image API would list for it counts:
 * its own images, public ones and shared ones it accepted, never another project's community
 * image (Glance lists those only when asked), which anyone could otherwise import under a
 * popular name to be pulled in place of the real one. Anonymous pulls get public images by name,
 * public and community ones by id; an anonymous caller owns nothing, whatever an image's owner.
 */
export async function readableBy(caller: Caller | null, found: ImageRecord[], members: MemberRepository, byId = true): Promise<ImageRecord[]> {
  const out: ImageRecord[] = [];
  for (const image of found) {
    if (!caller) {
      if (image.visibility === 'public' || (byId && image.visibility === 'community')) out.push(image);
      continue;
    }
    const membership = image.visibility === 'shared' ? ((await members.get(image.id, caller.project))?.status ?? null) : null;
    const allowed = byId ? canRead(image, caller, membership) : listedFor(caller, new Map(membership ? [[image.id, membership]] : []), undefined)(image);
    if (allowed) out.push(image);
  }
  return out;
}
