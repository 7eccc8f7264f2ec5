import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { BerthError } from '../../common/errors.js';
import { requestRaw } from '../../common/http-client.js';
import { imageError } from '../errors.js';

export interface RegistryResponse { status: number; headers: IncomingHttpHeaders; body: Readable; url: URL }

export interface SendOptions {
  headers?: Record<string, string>;
  timeoutMs: number;
  maxRedirects?: number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * One GET with redirects followed by hand: blob GETs are commonly redirected to object storage
 * (S3, GCS, a CDN) with a pre-signed URL, and sending the registry's bearer token there would leak
 * it and can make the storage refuse the request; so Authorization is dropped once the origin
 * changes.
 */
export async function getFollowingRedirects(start: URL, opts: SendOptions): Promise<RegistryResponse> {
  let url = start;
  let headers = { ...opts.headers };
  const max = opts.maxRedirects ?? 5;
  for (let hop = 0; ; hop++) {
    const res = await requestOnce(url, headers, opts.timeoutMs);
    if (!REDIRECTS.has(res.status)) return res;
    res.body.resume();
    const location = res.headers.location;
    if (!location) throw imageError('REGISTRY_ERROR', `registry redirected ${url.pathname} without a Location`, { url: url.origin });
    if (hop >= max) throw imageError('REGISTRY_ERROR', `more than ${max} redirects fetching ${start.pathname}`, { url: start.origin });
    const next = new URL(location, url);
    if (next.protocol !== 'http:' && next.protocol !== 'https:') throw imageError('REGISTRY_ERROR', `redirect to unsupported scheme ${next.protocol}`);
    if (next.origin !== url.origin) {
      const { authorization: _dropped, ...rest } = headers;
      headers = rest;
    }
    url = next;
  }
}

async function requestOnce(url: URL, headers: Record<string, string>, timeoutMs: number): Promise<RegistryResponse> {
  try {
    const res = await requestRaw({ base: new URL(url.origin) }, { path: `${url.pathname}${url.search}`, headers, timeoutMs }, 'registry');
    res.body.on('error', () => {});
    return { ...res, url };
  } catch (err) {
    if (err instanceof BerthError && (err.code === 'SERVICE_UNREACHABLE' || err.code === 'SERVICE_TIMEOUT')) {
      throw imageError('REGISTRY_UNREACHABLE', `registry ${url.host} unreachable: ${err.message}`, { registry: url.host }, err);
    }
    throw err;
  }
}

/** The distribution spec's error body (`{"errors": [{"code", "message"}]}`) as one line, if any. */
export async function describeRegistryError(res: RegistryResponse): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length;
    if (size > 64 * 1024) { res.body.destroy(); break; }
    chunks.push(chunk as Buffer);
  }
  try {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { errors?: { code?: string; message?: string }[] };
    const first = body.errors?.[0];
    if (first) return `${first.code ?? 'ERROR'}: ${first.message ?? ''}`.trim();
  } catch { /* not the spec's JSON: the status says enough */ }
  return `HTTP ${res.status}`;
}
