import type { Agent } from 'node:http';
import { incomingValidator } from '../common/keystone/index.js';
import type { Config } from '../conf/index.js';
import type { KeystoneAuth } from './policy/auth.js';
import { createImageClient } from './client/http.js';
import type { ExportTarget } from './archive/export.js';

/**
 * Incoming Keystone auth from `[image_store] auth_strategy` and `[keystone_authtoken]`; null in
 * noauth. A keystone strategy without its service user stops start-up, naming what is missing.
 */
export function incomingAuth(config: Config, agent?: Agent): KeystoneAuth | null {
  if (config.image_store.auth_strategy !== 'keystone') return null;
  return incomingValidator('[image_store] auth_strategy = keystone', config.keystone_authtoken, agent);
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** True when `url` is this service's own API, which the default `[glance] api_url` is. */
function isOwnApi(url: string, listen: string): boolean {
  const u = new URL(url);
  const [host = '', port = ''] = [listen.slice(0, listen.lastIndexOf(':')), listen.slice(listen.lastIndexOf(':') + 1)];
  const same = (a: string, b: string) => a === b || (LOOPBACK.has(a) && LOOPBACK.has(b)) || b === '0.0.0.0';
  return u.port === port && same(u.hostname, host);
}

/**
 * The Glance exports go to: `[glance]` with its Keystone auth block (api_url empty: the catalog's
 * image endpoint), or a plain api_url; none when that is this service itself.
 */
export function exportTargetOf(config: Config): ExportTarget | undefined {
  const g = config.glance;
  if (!g.auth_url && (!g.api_url || isOwnApi(g.api_url, config.image_store.listen))) return undefined;
  // Uploads of large images: the timeout is per idle socket, not for the whole transfer.
  return createImageClient({ url: g.api_url, keystone: g, requestTimeoutMs: 300_000 });
}
