import type { Agent } from 'node:http';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { BerthError, errorFromBody } from '../../common/errors.js';
import { readBody, requestJson, requestRaw, type RawResponse, type RequestOptions } from '../../common/http-client.js';
import type { KeystoneCredentials, KeystoneSession } from '../../common/keystone/index.js';
import { imageClientAuth, unauthorized } from './auth.js';
import { imageError } from './errors.js';
import type { GlanceImage, ImageService, ImportProgress } from './types.js';

export interface ImageClientOptions {
  /** Glance v2 endpoint: http://HOST:PORT or unix:///PATH.sock; empty: the Keystone catalog's `image` endpoint. */
  url: string;
  /** Sent as X-Auth-Token (Keystone); ignored by a noauth image service. */
  token?: string;
  /**
   * A `[glance]` auth block: when its auth_url is set, every call sends a token of this Keystone
   * session, and a 401 makes it authenticate again once before the call fails.
   */
  keystone?: KeystoneCredentials;
  session?: KeystoneSession;
  /** Sent as X-Roles to a noauth image service (see ImageClientAuthOptions.roles). */
  roles?: string[];
  pollIntervalMs?: number;
  /** Longest an importImage call waits for the image to become active. */
  importTimeoutMs?: number;
  requestTimeoutMs?: number;
  /** The connection pool, instead of the shared keep-alive one (common/http-client.ts). */
  agent?: Agent;
}

const SERVICE = 'image service';

/** ImageService over the Glance v2 HTTP API: the glance-bridge, or a real Glance with Keystone. */
export function createImageClient(opts: ImageClientOptions): ImageService {
  const auth = imageClientAuth(opts);
  const timeoutMs = opts.requestTimeoutMs ?? 30_000;
  const json = async <T>(method: string, path: string, body?: unknown, accept: number[] = [], contentType?: string): Promise<{ status: number; body: T }> => {
    for (let attempt = 0; ; attempt++) {
      const headers = { ...(contentType ? { 'content-type': contentType } : {}), ...(await auth.headers()) };
      const res = await requestJson<T>(await auth.endpoint(), { method, path, headers, body, timeoutMs, accept: [...accept, 401] }, SERVICE);
      if (res.status !== 401 || accept.includes(401)) return res;
      if (attempt === 0 && auth.renew()) continue;
      throw unauthorizedFrom(res.body, method, path);
    }
  };
  /** A bodiless request whose answer is streamed; retried once with a fresh token after a 401. */
  const raw = async (o: RequestOptions): Promise<RawResponse> => {
    for (let attempt = 0; ; attempt++) {
      const res = await requestRaw(await auth.endpoint(), { ...o, headers: { ...o.headers, ...(await auth.headers()) }, timeoutMs }, SERVICE);
      if (res.status !== 401 || o.stream || attempt > 0 || !auth.renew()) return res;
      res.body.resume();
    }
  };

  const patch = async (id: string, ops: Array<{ op: string; path: string; value: string }>): Promise<GlanceImage> =>
    (await json<GlanceImage>('PATCH', `/v2/images/${encodeURIComponent(id)}`, ops, [], 'application/openstack-images-v2.1-json-patch')).body;

  const getImage = async (id: string): Promise<GlanceImage | null> => {
    const res = await json<GlanceImage>('GET', `/v2/images/${encodeURIComponent(id)}`, undefined, [404]);
    return res.status === 404 ? null : res.body;
  };

  return {
    getImage,

    async getMember(id, memberId) {
      // Glance answers 404 both for no such member and for an image that is not shared.
      const res = await json<{ status: string }>('GET', `/v2/images/${encodeURIComponent(id)}/members/${encodeURIComponent(memberId)}`, undefined, [404, 403]);
      return res.status === 200 ? res.body : null;
    },

    async listImages(filters = {}) {
      const images: GlanceImage[] = [];
      let path: string | undefined = `/v2/images?${new URLSearchParams({ limit: '1000', ...filters }).toString()}`;
      while (path) {
        const res: { body: { images: GlanceImage[]; next?: string } } = await json('GET', path);
        images.push(...res.body.images);
        path = res.body.next;
      }
      return images;
    },

    async downloadImage(id) {
      const res = await raw({ path: `/v2/images/${encodeURIComponent(id)}/file` });
      if (res.status === 200) return res.body;
      const text = await readBody(res.body, 1024 * 1024).catch(() => Buffer.alloc(0));
      if (res.status === 204) throw imageError('IMAGE_NO_DATA', `image ${id} has no data yet`, { image_id: id });
      let body: unknown;
      try {
        body = JSON.parse(text.toString('utf8'));
      } catch {
        body = undefined;
      }
      throw errorFromBody(body, res.status, `${SERVICE} GET /v2/images/${id}/file`);
    },

    async importImage(source, importOpts = {}) {
      const res = await json<{ image: GlanceImage }>('POST', '/v2/berth/import', { source, ...(importOpts.name ? { name: importOpts.name } : {}) });
      const deadline = Date.now() + (opts.importTimeoutMs ?? 3_600_000);
      let image: GlanceImage | null = res.body.image;
      for (;;) {
        if (!image) throw imageError('IMAGE_IMPORT_FAILED', `image of ${source} was deleted during its import`);
        importOpts.onProgress?.(progressOf(image));
        if (image.status === 'active') return image;
        if (image.status !== 'importing' && image.status !== 'queued') {
          const reason = typeof image.berth_import_error === 'string' ? image.berth_import_error : `image is ${image.status}`;
          throw imageError('IMAGE_IMPORT_FAILED', `import of ${source} failed: ${reason}`, { image_id: image.id, reason });
        }
        if (Date.now() > deadline)
          throw imageError('IMAGE_IMPORT_TIMEOUT', `import of ${source} still running after ${opts.importTimeoutMs ?? 3_600_000} ms`, { image_id: image.id });
        await delay(opts.pollIntervalMs ?? 1000);
        image = await getImage(image.id);
      }
    },

    async uploadImage(id, data, size) {
      const stream = data instanceof Readable ? data : Readable.from(data as AsyncIterable<Buffer>);
      // A stream cannot be sent twice: a cheap authenticated call first renews a stale token.
      if (opts.keystone?.auth_url || opts.session) await getImage(id);
      const path = `/v2/images/${encodeURIComponent(id)}/file`;
      const res = await raw({
        method: 'PUT',
        path,
        stream,
        headers: { 'content-type': 'application/octet-stream', ...(size !== undefined ? { 'content-length': String(size) } : {}) },
      });
      const text = await readBody(res.body, 1024 * 1024).catch(() => Buffer.alloc(0));
      if (res.status === 401) {
        stream.destroy();
        throw unauthorizedFrom(undefined, 'PUT', path);
      }
      if (res.status !== 204 && res.status !== 200) {
        // The service may refuse before reading everything (wrong state, over the size cap).
        stream.destroy();
        let body: unknown;
        try {
          body = JSON.parse(text.toString('utf8'));
        } catch {
          body = undefined;
        }
        throw errorFromBody(body, res.status, `${SERVICE} PUT /v2/images/${id}/file`);
      }
      const image = await getImage(id);
      if (!image) throw imageError('IMAGE_NOT_FOUND', `image ${id} was deleted during its upload`, { image_id: id });
      return image;
    },

    async createImage(props) {
      return (await json<GlanceImage>('POST', '/v2/images', props)).body;
    },

    async exportImage(id, exportOpts = {}) {
      return (await json<{ image: GlanceImage }>('POST', `/v2/images/${encodeURIComponent(id)}/actions/export`, exportOpts)).body.image;
    },

    async setProperties(id, properties) {
      return patch(
        id,
        Object.entries(properties).map(([key, value]) => ({ op: 'add', path: `/${key}`, value })),
      );
    },

    async setFormats(id, formats) {
      return patch(
        id,
        Object.entries(formats).map(([key, value]) => ({ op: 'replace', path: `/${key}`, value })),
      );
    },

    async deleteImage(id) {
      // Already gone counts as deleted, so retries are safe.
      await json('DELETE', `/v2/images/${encodeURIComponent(id)}`, undefined, [404]);
    },
  };
}

/** A Berth body keeps its code (a noauth bridge never sends one); anything else is our credentials' fault. */
function unauthorizedFrom(body: unknown, method: string, path: string): BerthError {
  const err = errorFromBody(body, 401, `${SERVICE} ${method} ${path}`);
  return err.code === 'UPSTREAM_ERROR' ? unauthorized(method, path) : err;
}

function progressOf(image: GlanceImage): ImportProgress {
  const done = typeof image.berth_import_bytes_done === 'number' ? image.berth_import_bytes_done : image.status === 'active' ? (image.size ?? 0) : 0;
  const total = typeof image.berth_import_bytes_total === 'number' ? image.berth_import_bytes_total : image.status === 'active' ? image.size : null;
  return { image_id: image.id, status: image.status, bytes_done: done, bytes_total: total };
}
