import { randomUUID } from 'node:crypto';
import type { RequestContext } from '../rpc/envelope.js';
import type { RpcCaller } from '../rpc/caller.js';
import { OBJECT_VERSIONS, type Primitive } from './objects.js';

/**
 * nova-conductor's object API (RPC 3.0, no namespace) — the one way a compute node reads and
 * writes nova's database. `objectAction` returns `[updates, return_value]`.
 */
export interface ConductorClient {
  objectAction(objinst: Primitive, objmethod: string, kwargs?: Record<string, unknown>, ctx?: RequestContext): Promise<[Record<string, unknown>, unknown]>;
  objectClassActionVersions(objname: string, objmethod: string, args: unknown[], kwargs?: Record<string, unknown>): Promise<unknown>;
}

/** The admin context a compute service uses for its own conductor calls (fixture 01's key set). */
export function adminContext(): RequestContext {
  return {
    user: null,
    project_id: null,
    system_scope: null,
    project: null,
    domain: null,
    user_domain: null,
    project_domain: null,
    is_admin: true,
    read_only: false,
    show_deleted: false,
    auth_token: null,
    request_id: `req-${randomUUID()}`,
    global_request_id: null,
    resource_uuid: null,
    roles: [],
    user_identity: '- - - - -',
    is_admin_project: true,
    user_id: null,
    read_deleted: 'no',
    remote_address: null,
    timestamp: new Date().toISOString().replace('Z', ''),
    quota_class: null,
    user_name: null,
    service_catalog: [],
    project_name: null,
  };
}

export class AmqpConductor implements ConductorClient {
  constructor(
    private readonly caller: RpcCaller,
    private readonly topic: string,
    private readonly timeoutSeconds: number,
  ) {}

  private call<T>(method: string, args: Record<string, unknown>, ctx?: RequestContext): Promise<T> {
    // The request id of the operation that caused the call travels on, so nova's logs join ours.
    const context = { ...adminContext(), ...(ctx?.request_id ? { request_id: ctx.request_id, global_request_id: ctx.global_request_id ?? null } : {}) };
    return this.caller.call<T>(this.topic, method, args, { version: '3.0', context, timeoutSeconds: this.timeoutSeconds });
  }

  async objectAction(
    objinst: Primitive,
    objmethod: string,
    kwargs: Record<string, unknown> = {},
    ctx?: RequestContext,
  ): Promise<[Record<string, unknown>, unknown]> {
    const result = await this.call<unknown>('object_action', { objinst, objmethod, args: [], kwargs }, ctx);
    if (!Array.isArray(result) || result.length !== 2) return [{}, result];
    return [(result[0] ?? {}) as Record<string, unknown>, result[1]];
  }

  objectClassActionVersions(objname: string, objmethod: string, args: unknown[], kwargs: Record<string, unknown> = {}): Promise<unknown> {
    return this.call('object_class_action_versions', { objname, objmethod, object_versions: { ...OBJECT_VERSIONS }, args, kwargs });
  }
}
