import http from 'node:http';
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { BerthError } from '../../common/errors.js';
import { imageError } from '../errors.js';
import type { DestinationGuard } from './destination.js';

export interface RegistryResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Readable;
  url: URL;
}

export interface SendOptions {
  headers?: Record<string, string>;
  timeoutMs: number;
  maxRedirects?: number;
  /** Checks every destination (the first URL and each redirect hop) where it is connected to. */
  guard: DestinationGuard;
  /** `HOST[:PORT]` spoken to over plain HTTP: the only hosts a redirect may lead to over HTTP. */
  insecureHosts: readonly string[];
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/**
 * One GET with redirects followed by hand: blob GETs are commonly redirected to object storage
 * (S3, GCS, a CDN) with a pre-signed URL, and sending the registry's bearer token there would leak
 * it and can make the storage refuse the request; so Authorization is dropped once the origin
 * changes. Each hop is checked like the first URL (internal addresses refused), and a hop may use
 * plain HTTP only from plain HTTP to a host in insecureHosts: never a downgrade from HTTPS.
 */
export async function getFollowingRedirects(start: URL, opts: SendOptions): Promise<RegistryResponse> {
  let url = start;
  let headers = { ...opts.headers };
  const max = opts.maxRedirects ?? 5;
  for (let hop = 0; ; hop++) {
    const res = await requestOnce(url, headers, opts);
    if (!REDIRECTS.has(res.status)) return res;
    res.body.resume();
    const location = res.headers.location;
    if (!location) throw imageError('REGISTRY_ERROR', `registry redirected ${url.pathname} without a Location`, { url: url.origin });
    if (hop >= max) throw imageError('REGISTRY_ERROR', `more than ${max} redirects fetching ${start.pathname}`, { url: start.origin });
    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      throw imageError('REGISTRY_ERROR', `registry redirected ${url.pathname} to an unusable Location`, { url: url.origin });
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:') throw imageError('REGISTRY_ERROR', `redirect to unsupported scheme ${next.protocol}`);
    if (next.protocol === 'http:' && (url.protocol !== 'http:' || !opts.insecureHosts.includes(next.host))) {
      throw imageError(
        'REGISTRY_DESTINATION_REFUSED',
        `${url.host} redirected to plain HTTP at ${next.host}; only a registry in [registry] insecure_hosts may be reached without TLS, and never after HTTPS`,
        { url: url.origin, location: next.origin },
      );
    }
    if (next.origin !== url.origin) {
      const { authorization: _dropped, ...rest } = headers;
      headers = rest;
    }
    url = next;
  }
}

function requestOnce(url: URL, headers: Record<string, string>, opts: SendOptions): Promise<RegistryResponse> {
  // Node's sockets do not look up an IP literal, so the guard sees that one here.
  opts.guard.checkLiteral(url);
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      url,
      {
        method: 'GET',
        headers,
        agent: opts.guard.agentFor(url),
        lookup: opts.guard.lookupFor(url),
        timeout: opts.timeoutMs,
      },
      (res) => {
        res.on('error', () => {});
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url });
      },
    );
    req.on('timeout', () =>
      req.destroy(imageError('REGISTRY_UNREACHABLE', `registry ${url.host} did not answer GET ${url.pathname} in time`, { registry: url.host })),
    );
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof BerthError) return reject(err);
      reject(imageError('REGISTRY_UNREACHABLE', `registry ${url.host} unreachable: ${err.code ?? err.message}`, { registry: url.host }, err));
    });
    req.end();
  });
}

// What of a registry's own error message is repeated to the caller: enough to say what is wrong.
const MESSAGE_CHARS = 200;

/**
 * The distribution spec's error body (`{"errors": [{"code", "message"}]}`) as one line, if any,
 * bounded and without control characters. With `disclose` false (an answer from anything but the
 * registry itself: a token realm, a redirect target) the body is dropped unread and only the status
 * is told: what some other service answered is not for the tenant who pointed us at it.
 */
export async function describeRegistryError(res: RegistryResponse, disclose = true): Promise<string> {
  if (!disclose) {
    res.body.destroy();
    return `HTTP ${res.status}`;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).length;
    if (size > 64 * 1024) {
      res.body.destroy();
      break;
    }
    chunks.push(chunk as Buffer);
  }
  try {
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { errors?: { code?: unknown; message?: unknown }[] };
    const first = body.errors?.[0];
    if (first) {
      const text = `${typeof first.code === 'string' ? first.code : 'ERROR'}: ${typeof first.message === 'string' ? first.message : ''}`;
      const clean = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
      return clean.length > MESSAGE_CHARS ? `${clean.slice(0, MESSAGE_CHARS)}…` : clean;
    }
  } catch {
    /* not the spec's JSON: the status says enough */
  }
  return `HTTP ${res.status}`;
}
