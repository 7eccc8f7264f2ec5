import type { Agent } from 'node:http';
import { BerthError, commonError } from '../../common/errors.js';
import { parseEndpoint, type Endpoint } from '../../common/http-client.js';
import { imageError } from './errors.js';
import { keystoneSession, type KeystoneCredentials, type KeystoneSession } from '../../common/keystone/index.js';

/**
 * How the image client reaches and authenticates to Glance: a fixed URL and token (the
 * glance-bridge, noauth), or a Keystone session from a `[glance]` auth block, which gives the
 * token and, when no URL is configured, the catalog's `image` endpoint.
 */
export interface ImageClientAuth {
  endpoint(): Promise<Endpoint>;
  headers(): Promise<Record<string, string>>;
  /** After a 401: forget the token; true when a retry may succeed (a session can renew it). */
  renew(): boolean;
}

export interface ImageClientAuthOptions {
  url: string;
  token?: string;
  /** A `[glance]`-shaped auth block; used only when its `auth_url` is set. */
  keystone?: KeystoneCredentials;
  /** An existing session (takes precedence over `keystone`). */
  session?: KeystoneSession;
  /**
   * Roles sent as `X-Roles` to a noauth image service, which believes them (Keystone mode ignores
   * them): the operator's tools act as admin of a bridge of their own, e.g. to export as public.
   */
  roles?: string[];
  /** The connection pool, instead of the shared keep-alive one (common/http-client.ts). */
  agent?: Agent;
}

export function imageClientAuth(o: ImageClientAuthOptions): ImageClientAuth {
  const session = o.session ?? (o.keystone?.auth_url ? keystoneSession(o.keystone) : null);
  if (!o.url && !session) {
    throw commonError('INVALID_CONFIG', 'the image service has no URL: set [glance] api_url, or [glance] auth_url to find Glance in the Keystone catalog');
  }
  let endpoint: Promise<Endpoint> | null = o.url ? Promise.resolve(parseEndpoint(o.url, o.agent)) : null;
  return {
    endpoint() {
      endpoint ??= session!.endpoint('image').then((url) => parseEndpoint(url, o.agent));
      // A catalog lookup that failed (Keystone down) is tried again on the next call.
      endpoint.catch(() => {
        if (!o.url) endpoint = null;
      });
      return endpoint;
    },
    async headers(): Promise<Record<string, string>> {
      if (session) return { 'x-auth-token': await session.token() };
      return { ...(o.token ? { 'x-auth-token': o.token } : {}), ...(o.roles?.length ? { 'x-roles': o.roles.join(',') } : {}) };
    },
    renew() {
      session?.invalidate();
      return session !== null;
    },
  };
}

/** Glance refused the service's token even after a fresh authentication. */
export function unauthorized(method: string, path: string): BerthError {
  return imageError(
    'IMAGE_SERVICE_UNAUTHORIZED',
    `the image service refused the credentials for ${method} ${path} (HTTP 401); check [glance] auth_url, username and password`,
  );
}
