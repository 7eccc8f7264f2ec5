import { parseEndpoint, readBody, requestRaw } from '../../common/http-client.js';
import type { Config } from '../../conf/index.js';

/** GET `path` of `url`; resolves with the HTTP status (the body is drained). */
export type StatusOf = (url: string, path: string) => Promise<number>;

export const httpStatusOf: StatusOf = async (url, path) => {
  const res = await requestRaw(parseEndpoint(url), { path, timeoutMs: 2000 });
  await readBody(res.body, 65536);
  return res.status;
};

type ProbeConfig = Pick<Config, 'image_store' | 'glance' | 'nova'>;

/**
 * Where berth-images is probed. On a nova-mode node `[glance] api_url` is the cloud's Glance (or
 * empty: the catalog's), which is not this process: there it is the image store's own
 * `[image_store] listen` address (a wildcard address reached on loopback). In standalone mode
 * `[glance] api_url` is how everything reaches berth-images, so that is what must answer.
 */
export function imageServiceUrl(config: ProbeConfig): string {
  if (config.nova.control_plane !== 'nova') return config.glance.api_url;
  const listen = config.image_store.listen;
  const m = /^(\[[^\]]*\]|[^:]*):(\d+)$/.exec(listen);
  if (!m) return `http://${listen}`;
  const host = ({ '': '127.0.0.1', '0.0.0.0': '127.0.0.1', '[::]': '[::1]' } as Record<string, string>)[m[1]!] ?? m[1];
  return `http://${host}:${m[2]}`;
}

/**
 * Whether berth-images answers, without a token: oslo.middleware's /healthcheck at its own
 * address on a nova-mode node; in standalone mode the image list, where a 401 (an image service
 * with keystone auth) is an answer too.
 */
export async function imageServiceUp(config: ProbeConfig, statusOf: StatusOf = httpStatusOf): Promise<boolean> {
  try {
    const url = imageServiceUrl(config);
    if (config.nova.control_plane === 'nova') return (await statusOf(url, '/healthcheck')) === 200;
    const status = await statusOf(url, '/v2/images?limit=1');
    return status === 200 || status === 401;
  } catch {
    return false;
  }
}
