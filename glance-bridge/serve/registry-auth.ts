import type Koa from 'koa';
import { BerthError } from '../../common/errors.js';
import type { TokenValidator } from '../../common/keystone/index.js';
import { callerFromToken } from '../api/auth.js';
import { canRead, type Caller } from '../api/access.js';
import type { MemberRepository } from '../store/members.js';
import type { ImageRecord } from '../store/images.js';

/**
 * Who pulls from the registry endpoint when the image service uses Keystone. Hosts' dockerd pull
 * without credentials, so an anonymous pull sees what Glance shows everyone: public and community
 * images (registry imports are public). A Keystone token, as `Authorization: Bearer TOKEN` or as
 * the password of Basic credentials (`docker login -u ANY -p TOKEN` for clients that send them),
 * sees what its project may read through the image API.
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

const ANONYMOUS: Caller = { project: '', admin: false };

/** The images among `found` that `caller` may read, as the image API's visibility rules decide. */
export async function readableBy(caller: Caller | null, found: ImageRecord[], members: MemberRepository): Promise<ImageRecord[]> {
  const who = caller ?? ANONYMOUS;
  const out: ImageRecord[] = [];
  for (const image of found) {
    const membership = caller && image.visibility === 'shared' ? (await members.get(image.id, caller.project))?.status ?? null : null;
    if (canRead(image, who, membership)) out.push(image);
  }
  return out;
}
