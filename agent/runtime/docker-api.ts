import { request } from 'node:http';
import type { Duplex, Readable } from 'node:stream';
import { BerthError } from '../../common/errors.js';
import { parseEndpoint, readBody, requestRaw, type Endpoint, type RawResponse } from '../../common/http-client.js';
import { agentError } from '../errors.js';

export interface DockerCall {
  method?: string;
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  stream?: Readable;
  headers?: Record<string, string>;
  timeoutMs?: number;
  /** Non-2xx statuses returned to the caller instead of thrown. */
  accept?: number[];
  /** What the call does, for error messages ("create the container"). */
  what: string;
}

/** The message Docker puts in its error bodies: `{"message": "..."}`. */
export interface DockerReply<T> {
  status: number;
  body: T | undefined;
  message: string;
}

/**
 * Docker Engine API over HTTP (usually a unix socket) at a pinned API version, so a daemon
 * upgrade cannot change the shapes this code reads. Transport failures become
 * RUNTIME_UNAVAILABLE (retryable); refusals become RUNTIME_ERROR whose message names the
 * operation only, while Docker's own text (which can carry container ids) stays in `cause`.
 */
export class DockerApi {
  private readonly endpoint: Endpoint;
  constructor(
    hostUrl: string,
    private readonly apiVersion: string,
    private readonly timeoutMs = 60_000,
  ) {
    this.endpoint = parseEndpoint(hostUrl);
  }

  async raw(call: DockerCall): Promise<RawResponse> {
    try {
      return await requestRaw(
        this.endpoint,
        {
          method: call.method ?? 'GET',
          path: this.versioned(call.path, call.query),
          body: call.body,
          stream: call.stream,
          headers: call.headers,
          timeoutMs: call.timeoutMs ?? this.timeoutMs,
        },
        'docker',
      );
    } catch (err) {
      if (err instanceof BerthError && (err.code === 'SERVICE_UNREACHABLE' || err.code === 'SERVICE_TIMEOUT')) {
        throw agentError('RUNTIME_UNAVAILABLE', `container runtime unavailable while trying to ${call.what}`, {}, err);
      }
      throw err;
    }
  }

  async json<T>(call: DockerCall): Promise<DockerReply<T>> {
    const res = await this.raw(call);
    let text: string;
    try {
      text = (await readBody(res.body, 16 * 1024 * 1024)).toString('utf8');
    } catch (err) {
      // The engine went away mid-answer (a dockerd restart): as unavailable as a refused connection.
      if (err instanceof BerthError) throw err;
      throw agentError('RUNTIME_UNAVAILABLE', `container runtime unavailable while trying to ${call.what}`, {}, err);
    }
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    const message = typeof (body as { message?: unknown } | undefined)?.message === 'string' ? (body as { message: string }).message : text.slice(0, 500);
    if (res.status >= 300 && res.status !== 304 && !(call.accept ?? []).includes(res.status)) {
      throw refusal(call.what, res.status, message);
    }
    return { status: res.status, body: body as T | undefined, message };
  }

  /**
   * A hijacked connection (`Upgrade: tcp`, as attach answers with 101): the socket, and the bytes
   * that arrived with the answer's head. Any other answer is a refusal (its status in details).
   */
  upgrade(call: DockerCall): Promise<{ socket: Duplex; head: Buffer }> {
    const ep = this.endpoint;
    return new Promise((resolve, reject) => {
      const req = request({
        ...(ep.socketPath ? { socketPath: ep.socketPath } : { host: ep.base.hostname, port: ep.base.port || 80 }),
        method: call.method ?? 'POST',
        path: this.versioned(call.path, call.query),
        headers: { Connection: 'Upgrade', Upgrade: 'tcp', ...call.headers },
        timeout: call.timeoutMs ?? this.timeoutMs,
      });
      req.on('upgrade', (_res, socket, head) => {
        socket.setTimeout(0);
        resolve({ socket, head });
      });
      req.on('response', (res) => {
        readBody(res, 65536).then(
          (b) => reject(refusal(call.what, res.statusCode ?? 0, b.toString('utf8'))),
          () => reject(refusal(call.what, res.statusCode ?? 0, '')),
        );
      });
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', (err) => reject(agentError('RUNTIME_UNAVAILABLE', `container runtime unavailable while trying to ${call.what}`, {}, err)));
      req.end();
    });
  }

  private versioned(path: string, query: DockerCall['query']): string {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) params.set(k, String(v));
    const qs = params.toString();
    return `/v${this.apiVersion}${path}${qs ? `?${qs}` : ''}`;
  }
}

export function refusal(what: string, status: number, dockerMessage: string): BerthError {
  return agentError('RUNTIME_ERROR', `container runtime failed to ${what} (HTTP ${status})`, { runtime_status: status }, new Error(dockerMessage));
}
