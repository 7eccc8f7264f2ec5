import { randomUUID } from 'node:crypto';
import { pyJson } from './pyjson.js';

/** oslo.messaging's message envelope, version 2.0 (oslo-wire-contract.md §4). */
export const ENVELOPE_VERSION = '2.0';

export class MalformedMessage extends Error {
  readonly code = 'RPC_MALFORMED_MESSAGE';
}

export function newUniqueId(): string {
  return randomUUID().replace(/-/g, '');
}

export function encodeEnvelope(message: Record<string, unknown>): Buffer {
  return Buffer.from(pyJson({ 'oslo.version': ENVELOPE_VERSION, 'oslo.message': pyJson(message) }), 'utf8');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Decodes a body as every oslo consumer does: an object holding both `oslo.version` and
 * `oslo.message` is an envelope whose message is parsed again; any other object is the message.
 */
export function decodeBody(body: Buffer): Record<string, unknown> {
  let outer: unknown;
  try {
    outer = JSON.parse(body.toString('utf8'));
  } catch {
    throw new MalformedMessage('body is not JSON');
  }
  if (!isObject(outer)) throw new MalformedMessage('body is not a JSON object');
  if (!('oslo.version' in outer && 'oslo.message' in outer)) return outer;
  const version = outer['oslo.version'];
  if (typeof version !== 'string' || version.split('.')[0] !== '2') {
    throw new MalformedMessage(`unsupported envelope version ${JSON.stringify(version)}`);
  }
  if (typeof outer['oslo.message'] !== 'string') throw new MalformedMessage('oslo.message is not a string');
  let inner: unknown;
  try {
    inner = JSON.parse(outer['oslo.message']);
  } catch {
    throw new MalformedMessage('oslo.message is not JSON');
  }
  if (!isObject(inner)) throw new MalformedMessage('oslo.message is not a JSON object');
  return inner;
}

/** The request context, as nova flattens it into `_context_*` keys. */
export type RequestContext = Record<string, unknown> & {
  request_id?: string;
  global_request_id?: string | null;
  user_id?: string | null;
  project_id?: string | null;
  roles?: string[];
  is_admin?: boolean;
};

export interface RpcRequest {
  method: string;
  args: Record<string, unknown>;
  namespace: string | null;
  version: string;
  context: RequestContext;
  uniqueId: string | null;
  /** Set for calls only. */
  reply: { msgId: string; replyQueue: string; monitorTimeout: number | null } | null;
}

/** Context keys Berth reads, with the JSON types nova gives them (any other key passes through as sent). */
const CONTEXT_TYPES: Record<string, (v: unknown) => boolean> = {
  request_id: (v) => v === null || typeof v === 'string',
  global_request_id: (v) => v === null || typeof v === 'string',
  user_id: (v) => v === null || typeof v === 'string',
  project_id: (v) => v === null || typeof v === 'string',
  roles: (v) => Array.isArray(v) && v.every((r) => typeof r === 'string'),
  is_admin: (v) => typeof v === 'boolean',
};

/**
 * The `_context_*` keys of a message as a plain object. Each key becomes an own property whatever
 * its name: a sender's `_context___proto__` is a key like any other, never the object's prototype.
 */
function contextOf(msg: Record<string, unknown>, reply: RpcRequest['reply']): RequestContext {
  const context: RequestContext = {};
  for (const [k, v] of Object.entries(msg)) {
    if (!k.startsWith('_context_')) continue;
    const key = k.slice('_context_'.length);
    const typeOk = Object.hasOwn(CONTEXT_TYPES, key) ? CONTEXT_TYPES[key]! : null;
    if (typeOk && !typeOk(v)) {
      const got = v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
      throw Object.assign(new MalformedMessage(`_context_${key} has the wrong type (${got})`), { reply });
    }
    Object.defineProperty(context, key, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return context;
}

/** Splits a decoded message into its parts; throws MalformedMessage naming what is wrong. */
export function parseRequest(msg: Record<string, unknown>): RpcRequest {
  const { method, args, namespace, version, _msg_id: msgId, _reply_q: replyQ, _timeout: timeout, _unique_id: uniqueId } = msg;
  let reply: RpcRequest['reply'] = null;
  if (msgId !== undefined || replyQ !== undefined) {
    if (typeof msgId !== 'string' || msgId === '' || typeof replyQ !== 'string' || replyQ === '') {
      throw new MalformedMessage('a call needs string _msg_id and _reply_q');
    }
    const monitor = typeof timeout === 'number' && Number.isFinite(timeout) && timeout > 0 ? timeout : null;
    reply = { msgId, replyQueue: replyQ, monitorTimeout: monitor };
  }
  if (typeof method !== 'string' || method === '') throw Object.assign(new MalformedMessage('method is missing or not a string'), { reply });
  const context = contextOf(msg, reply);
  if (args !== undefined && !isObject(args)) throw Object.assign(new MalformedMessage('args is not an object'), { reply });
  if (namespace !== undefined && namespace !== null && typeof namespace !== 'string')
    throw Object.assign(new MalformedMessage('namespace is not a string'), { reply });
  if (version !== undefined && typeof version !== 'string') throw Object.assign(new MalformedMessage('version is not a string'), { reply });
  return {
    method,
    args: (args as Record<string, unknown> | undefined) ?? {},
    namespace: (namespace as string | null | undefined) ?? null,
    version: (version as string | undefined) ?? '1.0',
    context,
    uniqueId: typeof uniqueId === 'string' ? uniqueId : null,
    reply,
  };
}

/** Context keys as nova sends them (used by the CLI and notifications). */
export function flattenContext(ctx: RequestContext): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(ctx)) out[`_context_${k}`] = v;
  return out;
}
