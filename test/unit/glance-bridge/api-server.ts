import { silentLogger } from '../../../common/log.js';
import type Koa from 'koa';
import { createApp, type AppDeps } from '../../../glance-bridge/app.js';
import type { Harness } from './harness.js';
import { inProcessFetch, isInProcess, serveInProcess, type InProcessServer } from '../../support/in-process.js';

export interface CallResult {
  status: number;
  headers: Headers;
  json: any;
  bytes: Buffer;
}

/** The bridge's app over a harness (default project `berth`, 64 KiB JSON bodies), `extra` deps added. */
export function appOver(h: Harness, extra: Partial<AppDeps> = {}): Koa {
  return createApp({
    images: h.images,
    blobs: h.blobs,
    importer: h.importer,
    uploader: h.uploader,
    log: silentLogger(),
    maxBodyBytes: 65536,
    defaultProject: 'berth',
    ...extra,
  });
}

/** appOver served in-process: no socket, yet uploads still arrive as a real request stream. */
export async function startApiServer(h: Harness, extra: Partial<AppDeps> = {}): Promise<InProcessServer> {
  return serveInProcess(appOver(h, extra).callback());
}

/** A request to `base` (in-process, or a real server), the response collected. */
export async function call(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<CallResult> {
  const raw = body === undefined ? undefined : Buffer.isBuffer(body) ? new Uint8Array(body) : typeof body === 'string' ? body : JSON.stringify(body);
  const res = await (isInProcess(base) ? inProcessFetch : fetch)(`${base}${path}`, {
    method,
    headers: { ...(raw !== undefined ? { 'content-type': Buffer.isBuffer(body) ? 'application/octet-stream' : 'application/json' } : {}), ...headers },
    ...(raw !== undefined ? { body: raw } : {}),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, bytes };
}
