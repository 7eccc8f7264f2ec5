import { Agent, Server, request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type RequestListener } from 'node:http';
import httpGlobal from 'node:http';
import { Duplex } from 'node:stream';

/**
 * HTTP to a request listener (a koa app's `callback()`, or any `(req, res) => void`) without a socket.
 *
 * The two ends of an in-memory stream pair stand in for a TCP connection: Node's own HTTP server
 * code parses the request from one end (so the app gets a real `IncomingMessage`, read as it reads
 * a socket: `content-length` or chunked, with backpressure) and Node's HTTP client writes the
 * request to, and parses the response from, the other. Nothing listens; no port is opened.
 *
 * Koa reads `req.socket.remoteAddress` (ctx.ip) and `req.socket.encrypted` (ctx.protocol): the
 * server end reports 127.0.0.1 and no TLS, as a loopback connection would.
 */

/** One end of an in-memory connection: what is written here is read at the peer, with backpressure. */
class PipeEnd extends Duplex {
  peer!: PipeEnd;
  remoteAddress = '127.0.0.1';
  remotePort = 40000;
  localAddress = '127.0.0.1';
  localPort = 80;
  remoteFamily = 'IPv4';
  encrypted = undefined;
  connecting = false;
  private resumePeer: (() => void) | null = null;

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    this.touch();
    this.peer.touch();
    if (this.peer.destroyed) {
      done();
      return;
    }
    if (this.peer.push(chunk)) done();
    else this.peer.resumePeer = done;
  }

  override _read(): void {
    const resume = this.resumePeer;
    this.resumePeer = null;
    resume?.();
  }

  override _final(done: (err?: Error | null) => void): void {
    if (!this.peer.destroyed) this.peer.push(null);
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    // A connection torn down at one end is closed at the other, as a TCP connection whose socket
    // is destroyed: the peer still reads what was written before, then the end of the stream
    // (a response cut short is seen as cut short), and is gone once it has read that.
    const resume = this.resumePeer;
    this.resumePeer = null;
    resume?.();
    if (this.idleTimer) clearTimeout(this.idleTimer);
    const peer = this.peer;
    if (!peer.destroyed) {
      if (peer.readableLength === 0 && !peer.isPaused()) peer.destroy();
      else {
        peer.push(null);
        peer.once('end', () => peer.destroy());
      }
    }
    done(err);
  }

  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  private idleMs = 0;
  private idleTimer: NodeJS.Timeout | null = null;

  /** As net.Socket's: 'timeout' after `ms` with nothing read or written (0 turns it off). */
  setTimeout(ms: number, onTimeout?: () => void): this {
    this.idleMs = ms;
    if (onTimeout) this.once('timeout', onTimeout);
    this.touch();
    return this;
  }

  /** Activity on the connection: the idle timer starts again. */
  touch(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = this.idleMs > 0 && !this.destroyed ? setTimeout(() => this.emit('timeout'), this.idleMs) : null;
    this.idleTimer?.unref();
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  address(): { address: string; family: string; port: number } {
    return { address: this.localAddress, family: 'IPv4', port: this.localPort };
  }
}

function pipePair(): [client: PipeEnd, server: PipeEnd] {
  const client = new PipeEnd();
  const server = new PipeEnd();
  client.peer = server;
  server.peer = client;
  server.remotePort = client.localPort;
  return [client, server];
}

export type Body = string | Uint8Array | AsyncIterable<Uint8Array | string>;

export interface InProcessResponse {
  status: number;
  headers: Headers;
  /** The response's headers as Node gives them (lower-cased names). */
  rawHeaders: IncomingHttpHeaders;
  bytes: Buffer;
  text(): string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json(): any;
}

/** A listener reachable in-process: `base` is a URL origin the helpers here route back to it. */
export interface InProcessServer {
  base: string;
  /** A Node client request to this listener (write the body, then `end()`), for streaming tests. */
  request(path: string, opts?: { method?: string; headers?: Record<string, string> }): ClientRequest;
  /** `fetch` against this listener; a relative path or a URL under `base`. */
  fetch(input: string | URL, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

const servers = new Map<string, Server>();

/** Whether `base` is the origin of a listener served in-process here. */
export function isInProcess(base: string): boolean {
  return servers.has(new URL(base).origin);
}
let seq = 0;

const byListener = new WeakMap<RequestListener, Server>();
/** The server ends of a server's in-memory connections still open: `close()` tears them down. */
const connections = new WeakMap<Server, Set<PipeEnd>>();

function serverFor(listener: RequestListener | Server): Server {
  if (listener instanceof Server) return listener;
  // An http.Server that is never listened on: it only parses what arrives on the in-memory ends.
  let server = byListener.get(listener);
  if (!server) byListener.set(listener, (server = new Server(listener)));
  return server;
}

/** A fresh in-memory connection to `server`: the server takes one end, the client end is returned. */
function connect(server: Server): PipeEnd {
  const [client, end] = pipePair();
  let live = connections.get(server);
  if (!live) connections.set(server, (live = new Set()));
  live.add(end);
  end.once('close', () => live.delete(end));
  server.emit('connection', end);
  return client;
}

/** A client request over a fresh in-memory connection to `server`. */
function open(server: Server, url: URL, method: string, headers: Record<string, string>): ClientRequest {
  const client = connect(server);
  return httpRequest({
    method,
    path: `${url.pathname}${url.search}`,
    host: url.hostname,
    port: 80,
    defaultPort: 80,
    headers,
    createConnection: () => client as unknown as import('node:net').Socket,
  });
}

/**
 * The connection pool an HTTP client under test is given (its `agent` option) instead of a port:
 * each connection it asks for is an in-memory one to the in-process listener whose origin the
 * request names. A host nothing is served at refuses the connection (ECONNREFUSED), as a closed
 * port does.
 */
export class InProcessAgent extends Agent {
  override createConnection(options: { host?: string | null; port?: number | string | null }): PipeEnd {
    const port = Number(options.port ?? 80);
    const origin = `http://${options.host ?? 'localhost'}${port === 80 ? '' : `:${port}`}`;
    const server = servers.get(origin);
    if (server) return connect(server);
    const [client] = pipePair();
    const refused = Object.assign(new Error(`connect ECONNREFUSED ${origin} (nothing served in-process there)`), { code: 'ECONNREFUSED' });
    process.nextTick(() => client.destroy(refused));
    return client;
  }
}

/** One InProcessAgent for every test: it routes by origin. */
export const inProcessAgent = new InProcessAgent();

/**
 * Routes Node's global HTTP agent in-process until the returned function is called, for a client
 * that offers no pool of its own: pkgcloud's Keystone identity (common/keystone/session.ts) sends
 * through the `request` library, which uses `http.globalAgent`.
 */
export function routeGlobalAgentInProcess(): () => void {
  const saved = httpGlobal.globalAgent;
  httpGlobal.globalAgent = inProcessAgent;
  return () => {
    httpGlobal.globalAgent = saved;
  };
}

/** `listener` under a fresh in-process origin; `close()` forgets it and ends what is still open. */
export function serveInProcess(listener: RequestListener | Server): InProcessServer {
  const base = `http://in-process-${++seq}.test`;
  const server = serverFor(listener);
  servers.set(base, server);
  return {
    base,
    request: (path, opts = {}) => open(server, new URL(path, base), opts.method ?? 'GET', opts.headers ?? {}),
    fetch: (input, init) => inProcessFetch(new URL(String(input), base), init),
    async close() {
      servers.delete(base);
      for (const end of connections.get(server) ?? []) end.destroy();
    },
  };
}

/** The in-process listener behind `url`'s origin; throws for any other origin. */
function lookup(url: URL): Server {
  const server = servers.get(url.origin);
  if (!server) throw new Error(`no in-process listener at ${url.origin} (closed, or not served in-process)`);
  return server;
}

type RequestOpts = { method?: string; headers?: Record<string, string> };

/**
 * A client request to the in-process listener at `url`'s origin (see `serveInProcess`), called
 * as `http.request(url[, options][, onResponse])` is; write the body, then `end()` it.
 */
export function inProcessRequest(
  url: string | URL,
  opts?: RequestOpts | ((res: IncomingMessage) => void),
  onResponse?: (res: IncomingMessage) => void,
): ClientRequest {
  const u = new URL(String(url));
  const options = typeof opts === 'function' ? {} : (opts ?? {});
  const callback = typeof opts === 'function' ? opts : onResponse;
  const req = open(lookup(u), u, options.method ?? 'GET', options.headers ?? {});
  if (callback) req.once('response', callback);
  return req;
}

/**
 * One request to `target` (a listener, or the `base` of an in-process server), the whole response
 * collected. A string or byte body goes with `content-length`; an async iterable goes chunked,
 * each chunk written as the app reads the previous ones.
 */
export async function inject(
  target: RequestListener | Server | string,
  opts: { method?: string; path?: string; headers?: Record<string, string>; body?: Body } = {},
): Promise<InProcessResponse> {
  const path = opts.path ?? '/';
  const url = typeof target === 'string' ? new URL(path, target) : new URL(path, 'http://in-process.test');
  const server = typeof target === 'string' ? lookup(url) : serverFor(target);
  const headers: Record<string, string> = { ...opts.headers };
  const body = opts.body;
  const fixed = typeof body === 'string' ? Buffer.from(body) : body instanceof Uint8Array ? body : undefined;
  if (fixed && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-length')) headers['content-length'] = String(fixed.byteLength);
  const req = open(server, url, opts.method ?? 'GET', headers);
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    req.on('response', resolve);
    req.on('error', reject);
    if (fixed) req.end(fixed);
    else if (body === undefined) req.end();
    else void pump(req, body as AsyncIterable<Uint8Array | string>).catch((err: Error) => req.destroy(err));
  });
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return collected(res, Buffer.concat(chunks));
}

/** Writes `body` to `req` chunk by chunk, waiting for `drain` whenever the connection is full. */
async function pump(req: ClientRequest, body: AsyncIterable<Uint8Array | string>): Promise<void> {
  for await (const chunk of body) {
    if (req.destroyed) return;
    if (!req.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          req.off('drain', done);
          req.off('close', done);
          resolve();
        };
        req.on('drain', done);
        req.on('close', done);
      });
    }
  }
  if (!req.destroyed) req.end();
}

function collected(res: IncomingMessage, bytes: Buffer): InProcessResponse {
  const headers = new Headers();
  for (let i = 0; i < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
  return {
    status: res.statusCode ?? 0,
    headers,
    rawHeaders: res.headers,
    bytes,
    text: () => bytes.toString('utf8'),
    json: () => {
      try {
        return JSON.parse(bytes.toString('utf8'));
      } catch {
        return undefined;
      }
    },
  };
}

const NULL_BODY = new Set([101, 103, 204, 205, 304]);

/** `fetch` for in-process origins: same arguments, a WHATWG `Response`, no socket. */
export async function inProcessFetch(input: string | URL, init: RequestInit = {}): Promise<Response> {
  const url = new URL(String(input));
  const headers: Record<string, string> = {};
  new Headers(init.headers).forEach((value, name) => {
    headers[name] = value;
  });
  const b = init.body;
  let body: Body | undefined;
  if (b === undefined || b === null) body = undefined;
  else if (typeof b === 'string' || b instanceof Uint8Array) body = b;
  else if (b instanceof ArrayBuffer) body = new Uint8Array(b);
  else if (typeof (b as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function') body = b as AsyncIterable<Uint8Array>;
  else throw new TypeError('inProcessFetch: unsupported body type');
  if (typeof b === 'string' && !('content-type' in headers)) headers['content-type'] = 'text/plain;charset=UTF-8';
  const res = await inject(url.origin, {
    method: init.method ?? 'GET',
    path: `${url.pathname}${url.search}`,
    headers,
    ...(body !== undefined ? { body } : {}),
  });
  const method = (init.method ?? 'GET').toUpperCase();
  return new Response(NULL_BODY.has(res.status) || method === 'HEAD' ? null : new Uint8Array(res.bytes), { status: res.status, headers: res.headers });
}
