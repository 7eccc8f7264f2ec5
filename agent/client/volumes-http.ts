import type { Agent } from 'node:http';
import { parseEndpoint, requestJson, type RequestOptions } from '../../common/http-client.js';
import type { KeystoneSession } from '../../common/keystone/index.js';
import type { Volume, VolumeAttach, VolumeChange, VolumeCreate } from './volumes.js';

/** The agent's local volumes API (docs/agent-api.md, "Volumes"), for the berth CLI. */
export interface VolumeClient {
  create(req: VolumeCreate): Promise<Volume>;
  /** Every project's volumes, or `projectId`'s. */
  list(projectId?: string): Promise<Volume[]>;
  /** By id, or by name within `projectId`. */
  get(ref: string, projectId?: string): Promise<Volume>;
  delete(ref: string, projectId?: string): Promise<void>;
  attach(ref: string, req: VolumeAttach): Promise<VolumeChange>;
  detach(ref: string, projectId?: string): Promise<VolumeChange>;
}

export interface VolumeClientOptions {
  url: string;
  token: string;
  session?: KeystoneSession;
  timeoutMs?: number;
  agent?: Agent;
}

export function createVolumeClient(opts: VolumeClientOptions): VolumeClient {
  const endpoint = parseEndpoint(opts.url, opts.agent);
  const call = async <T>(req: RequestOptions): Promise<T> => {
    const auth: Record<string, string> = opts.session ? { 'x-auth-token': await opts.session.token() } : { authorization: `Bearer ${opts.token}` };
    return (await requestJson<T>(endpoint, { ...req, timeoutMs: opts.timeoutMs ?? 120_000, headers: { ...req.headers, ...auth } }, 'berth-agent')).body;
  };
  const q = (projectId?: string): string => (projectId === undefined ? '' : `?project_id=${encodeURIComponent(projectId)}`);
  const path = (ref: string, rest = ''): string => `/v1/volumes/${encodeURIComponent(ref)}${rest}`;
  return {
    create: async (req) => (await call<{ volume: Volume }>({ method: 'POST', path: '/v1/volumes', body: req })).volume,
    list: async (projectId) => (await call<{ volumes: Volume[] }>({ path: `/v1/volumes${q(projectId)}` })).volumes,
    get: async (ref, projectId) => (await call<{ volume: Volume }>({ path: path(ref, q(projectId)) })).volume,
    delete: async (ref, projectId) => {
      await call<unknown>({ method: 'DELETE', path: path(ref, q(projectId)) });
    },
    attach: (ref, req) => call<VolumeChange>({ method: 'PUT', path: path(ref, '/attachment'), body: req }),
    detach: (ref, projectId) => call<VolumeChange>({ method: 'DELETE', path: path(ref, `/attachment${q(projectId)}`) }),
  };
}
