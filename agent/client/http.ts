import type { Agent } from 'node:http';
import { backoffDelay, UPPER_HALF_JITTER } from '../../common/backoff.js';
import { BerthError, commonError } from '../../common/errors.js';
import { isAgentErrorCode } from './errors.js';
import { parseEndpoint, requestJson, type RequestOptions } from '../../common/http-client.js';
import { withSessionToken, type KeystoneSession } from '../../common/keystone/index.js';
import type {
  AgentClient,
  FlavorSpec,
  HostImage,
  InstanceAction,
  InstanceSpec,
  InstanceStats,
  InstanceStatus,
  SerialConsoleGrant,
  SnapshotOptions,
  SerialConsoleLease,
  SnapshotTask,
  VifSpec,
} from './types.js';

export interface AgentClientOptions {
  /** `http://HOST:PORT` or `unix:///PATH.sock`. */
  url: string;
  /** Sent as `Authorization: Bearer` ([agent] auth_strategy token or token+keystone). */
  token: string;
  /**
   * Instead of the bearer token ([agent] auth_strategy keystone): every request carries a token of
   * this session as X-Auth-Token, and a 401 makes it authenticate again once.
   */
  session?: KeystoneSession;
  timeoutMs?: number;
  /** Extra attempts for requests that could not reach the agent; every agent call is idempotent. */
  retries?: number;
  /** First back-off delay; it doubles per attempt up to 5 s. */
  backoffMs?: number;
  /** The connection pool, instead of the shared keep-alive one (common/http-client.ts). */
  agent?: Agent;
}

/** AgentClient over the agent's HTTP API (docs/agent-api.md). */
export function createAgentClient(opts: AgentClientOptions): AgentClient {
  const endpoint = parseEndpoint(opts.url, opts.agent);
  const call = <T>(req: RequestOptions): Promise<{ status: number; body: T }> => withRetries(() => send<T>(req), opts.retries ?? 3, opts.backoffMs ?? 200);
  const path = (uuid: string, rest = ''): string => `/v1/instances/${encodeURIComponent(uuid)}${rest}`;

  return {
    async createInstance(uuid: string, spec: InstanceSpec): Promise<InstanceStatus> {
      // The build's request id, so the agent's request log line carries the caller's id.
      const headers = spec.request_id ? { 'x-openstack-request-id': spec.request_id } : undefined;
      return (await call<{ instance: InstanceStatus }>({ method: 'PUT', path: path(uuid), body: spec, ...(headers ? { headers } : {}) })).body.instance;
    },
    async getInstance(uuid: string): Promise<InstanceStatus | null> {
      const res = await call<{ instance: InstanceStatus } | undefined>({ path: path(uuid), accept: [404] });
      if (res.status === 404) {
        const code = (res.body as { error?: { code?: string } } | undefined)?.error?.code;
        if (code !== 'INSTANCE_NOT_FOUND') throw commonError('UPSTREAM_ERROR', `agent answered 404 ${code ?? ''} for ${path(uuid)}`);
        return null;
      }
      return res.body!.instance;
    },
    async listInstances(): Promise<InstanceStatus[]> {
      return (await call<{ instances: InstanceStatus[] }>({ path: '/v1/instances' })).body.instances;
    },
    async deleteInstance(uuid: string, o: { timeout?: number; keepVolumes?: boolean } = {}): Promise<void> {
      const query = [...(o.timeout === undefined ? [] : [`timeout=${o.timeout}`]), ...(o.keepVolumes ? ['keep_volumes=true'] : [])];
      await call<unknown>({ method: 'DELETE', path: path(uuid, query.length ? `?${query.join('&')}` : '') });
    },
    async instanceAction(uuid: string, action: InstanceAction): Promise<InstanceStatus> {
      return (await call<{ instance: InstanceStatus }>({ method: 'POST', path: path(uuid, '/action'), body: action })).body.instance;
    },
    async resizeInstance(uuid: string, flavor: FlavorSpec): Promise<InstanceStatus> {
      return (await call<{ instance: InstanceStatus }>({ method: 'PUT', path: path(uuid, '/flavor'), body: { flavor } })).body.instance;
    },
    async consoleLog(uuid: string, tailLines?: number): Promise<string> {
      return (await call<{ output: string }>({ path: path(uuid, tailLines === undefined ? '/console' : `/console?tail=${tailLines}`) })).body.output;
    },
    async openSerialConsole(uuid: string, kind: SerialConsoleLease = 'token'): Promise<SerialConsoleGrant> {
      return (await call<{ serial_console: SerialConsoleGrant }>({ method: 'POST', path: path(uuid, '/serial-console'), body: { kind } })).body.serial_console;
    },
    async serialConsolePort(uuid: string): Promise<number | null> {
      return (await call<{ serial_console: { port: number | null } }>({ path: path(uuid, '/serial-console') })).body.serial_console.port;
    },
    async attachVif(uuid: string, vif: VifSpec): Promise<{ port_id: string; ifname: string }> {
      const res = await call<{ vif: { port_id: string; ifname: string } }>({
        method: 'PUT',
        path: path(uuid, `/vifs/${encodeURIComponent(vif.portId)}`),
        body: { vif },
      });
      return res.body.vif;
    },
    async detachVif(uuid: string, portId: string): Promise<void> {
      await call<unknown>({ method: 'DELETE', path: path(uuid, `/vifs/${encodeURIComponent(portId)}`) });
    },
    async instanceStats(uuid: string): Promise<InstanceStats> {
      return (await call<{ stats: InstanceStats }>({ path: path(uuid, '/stats') })).body.stats;
    },
    async hostImage(imageId: string): Promise<HostImage> {
      return (await call<{ image: HostImage }>({ path: `/v1/images/${encodeURIComponent(imageId)}` })).body.image;
    },
    async snapshotInstance(uuid: string, imageId: string, opts: SnapshotOptions = {}): Promise<SnapshotTask> {
      return (await call<{ snapshot: SnapshotTask }>({ method: 'POST', path: path(uuid, '/snapshot'), body: { image_id: imageId, ...opts } })).body.snapshot;
    },
    async getSnapshot(imageId: string): Promise<SnapshotTask | null> {
      const res = await call<{ snapshot: SnapshotTask }>({ path: `/v1/snapshots/${encodeURIComponent(imageId)}`, accept: [404] });
      if (res.status === 404) {
        const code = (res.body as { error?: { code?: string } } | undefined)?.error?.code;
        if (code !== 'SNAPSHOT_NOT_FOUND') throw commonError('UPSTREAM_ERROR', `agent answered 404 ${code ?? ''} for a snapshot`);
        return null;
      }
      return res.body.snapshot;
    },
    async fetchImage(imageId: string): Promise<HostImage> {
      return (await call<{ image: HostImage }>({ method: 'PUT', path: `/v1/images/${encodeURIComponent(imageId)}` })).body.image;
    },
    async health(): Promise<{ ok: boolean; runtime: boolean }> {
      const res = await call<{ ok: boolean; runtime: boolean }>({ path: '/healthz', accept: [503] });
      return { ok: res.body?.ok === true, runtime: res.body?.runtime === true };
    },
  };

  async function send<T>(req: RequestOptions): Promise<{ status: number; body: T }> {
    const session = opts.session;
    if (!session) return requestJson<T>(endpoint, withAuth(req, { authorization: `Bearer ${opts.token}` }), 'berth-agent');
    if (req.accept?.includes(401)) return requestJson<T>(endpoint, withAuth(req, { 'x-auth-token': await session.token() }), 'berth-agent');
    let attempt = 0;
    // The second attempt, after a fresh authentication, lets requestJson raise the final 401.
    return withSessionToken(session, (token) =>
      requestJson<T>(endpoint, withAuth(attempt++ === 0 ? { ...req, accept: [...(req.accept ?? []), 401] } : req, { 'x-auth-token': token }), 'berth-agent'),
    );
  }

  function withAuth(req: RequestOptions, auth: Record<string, string>): RequestOptions {
    return { ...req, timeoutMs: opts.timeoutMs ?? 120_000, headers: { ...req.headers, ...auth } };
  }
}

/** Retries connection failures only; anything the agent answered is final. */
async function withRetries<T>(attempt: () => Promise<T>, retries: number, backoffMs: number): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      const unreachable = err instanceof BerthError && err.code === 'SERVICE_UNREACHABLE';
      if (!unreachable || n >= retries) throw rebuild(err);
      await new Promise((r) => setTimeout(r, backoffDelay(n, { baseMs: backoffMs, maxMs: 5000, jitter: UPPER_HALF_JITTER })));
    }
  }
}

/** Keeps the agent's codes; any other code from the agent becomes AGENT_ERROR with the original in details. */
function rebuild(err: unknown): unknown {
  if (!(err instanceof BerthError) || isAgentErrorCode(err.code) || err.code === 'SERVICE_TIMEOUT') return err;
  return new BerthError('AGENT_ERROR', err.message, {
    status: err.status,
    retryable: err.retryable,
    details: { ...err.details, agent_code: err.code },
    cause: err,
  });
}
