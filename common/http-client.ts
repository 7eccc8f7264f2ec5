import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { BerthError, commonError, errorFromBody } from './errors.js';

/**
 * A small HTTP client over node:http that also speaks to unix sockets (`unix:///path.sock`).
 * Connection failures become BerthError `SERVICE_UNREACHABLE` (retryable); HTTP errors are rebuilt
 * from Berth's error body when there is one.
 */
export interface Endpoint {
  base: URL;
  socketPath?: string;
  /**
   * The connection pool to use instead of the shared keep-alive one: whatever its
   * `createConnection` returns is the connection (tests hand in an in-memory one).
   */
  agent?: http.Agent;
}

export function parseEndpoint(url: string, agent?: http.Agent): Endpoint {
  if (url.startsWith('unix://')) return { base: new URL('http://localhost/'), socketPath: url.slice('unix://'.length) };
  const base = new URL(url);
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw commonError('INVALID_URL', `unsupported URL scheme in ${url}`);
  return agent ? { base, agent } : { base };
}

export interface RequestOptions {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: unknown;
  /** A stream to send as the body instead of JSON. */
  stream?: Readable;
  timeoutMs?: number;
  /** Status codes returned to the caller instead of thrown (e.g. 404 for "absent" checks). */
  accept?: number[];
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Readable;
}

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 64 });
const keepAliveTls = new https.Agent({ keepAlive: true, maxSockets: 64 });

export function requestRaw(ep: Endpoint, opts: RequestOptions, service = 'service'): Promise<RawResponse> {
  const url = new URL(opts.path.replace(/^\//, ''), ep.base.href.endsWith('/') ? ep.base : new URL(`${ep.base.href}/`));
  const headers: Record<string, string> = { ...opts.headers };
  let payload: Buffer | undefined;
  if (opts.body !== undefined) {
    payload = Buffer.from(JSON.stringify(opts.body));
    headers['content-type'] ??= 'application/json';
    headers['content-length'] = String(payload.length);
  }
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      url,
      {
        method: opts.method ?? 'GET',
        headers,
        socketPath: ep.socketPath,
        agent: ep.socketPath ? undefined : (ep.agent ?? (url.protocol === 'https:' ? keepAliveTls : keepAlive)),
        timeout: opts.timeoutMs ?? 30_000,
      },
      (res) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res }),
    );
    req.on('timeout', () => req.destroy(commonError('SERVICE_TIMEOUT', `${service} did not answer ${opts.method ?? 'GET'} ${url.pathname} in time`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof BerthError) return reject(err);
      reject(commonError('SERVICE_UNREACHABLE', `${service} unreachable at ${ep.socketPath ?? ep.base.origin}: ${err.code ?? err.message}`, {}, err));
    });
    if (opts.stream) opts.stream.on('error', (e) => req.destroy(e)).pipe(req);
    else req.end(payload);
  });
}

export async function readBody(stream: Readable, limit = 64 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      stream.destroy();
      throw commonError('RESPONSE_TOO_LARGE', `response larger than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** JSON request; throws BerthError for non-2xx statuses not listed in `accept`. */
export async function requestJson<T>(ep: Endpoint, opts: RequestOptions, service = 'service'): Promise<{ status: number; body: T }> {
  const res = await requestRaw(ep, { ...opts, headers: { accept: 'application/json', ...opts.headers } }, service);
  const buf = await readBody(res.body);
  let body: unknown = undefined;
  if (buf.length) {
    try {
      body = JSON.parse(buf.toString('utf8'));
    } catch {
      if (res.status < 300) throw commonError('UPSTREAM_BAD_RESPONSE', `${service} sent a body that is not JSON`);
    }
  }
  if (res.status >= 300 && !(opts.accept ?? []).includes(res.status)) {
    throw errorFromBody(body, res.status, `${service} ${opts.method ?? 'GET'} ${opts.path}`);
  }
  return { status: res.status, body: body as T };
}
