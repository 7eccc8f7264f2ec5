import { BerthError } from '../../common/errors.js';
import { DRIVER_ERRORS, driverError, isDriverErrorCode } from '../errors.js';
import { decodeBody, encodeEnvelope, flattenContext, newUniqueId, type RequestContext } from './envelope.js';
import { transientQueueArgs, type RabbitDeclareOptions } from './topology.js';
import type { Transport } from './transport.js';

/**
 * A failure the remote side answered, as oslo serialized it (class, module, kwargs). Its code is
 * the `berth_code` a Berth service put in the kwargs (driver/rpc/failure.ts), so a typed code
 * crosses the RPC unchanged; any other peer's failure is `REMOTE_<CLASS>`.
 */
export class RemoteFailure extends BerthError {
  constructor(
    readonly failureClass: string,
    readonly failureModule: string,
    message: string,
    readonly kwargs: Record<string, unknown>,
  ) {
    const berthCode = typeof kwargs.berth_code === 'string' && /^[A-Z][A-Z0-9_]*$/.test(kwargs.berth_code) ? kwargs.berth_code : null;
    super(berthCode ?? `REMOTE_${failureClass.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}`, message, {
      status: Number(kwargs.code ?? 500) || 500,
      retryable: berthCode !== null && isDriverErrorCode(berthCode) && DRIVER_ERRORS[berthCode].retryable === true,
      details: { class: failureClass, module: failureModule },
    });
  }
}

export interface CallOptions {
  namespace?: string | null;
  version: string;
  context: RequestContext;
  timeoutSeconds: number;
}

/**
 * Outgoing oslo RPC calls (what a nova service does with RPCClient.call) over the node's one
 * transport: a `reply_<hex32>` queue declared on every connection, replies correlated by
 * `_msg_id`. Accepts the one-message reply (`ending: true` with the result) and the older
 * two-message form (result, then an empty ending); call-monitor heartbeats are ignored.
 */
export class RpcCaller {
  readonly replyQueue = `reply_${newUniqueId()}`;
  private readonly pending = new Map<string, { result: unknown; resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  constructor(
    private readonly transport: Transport,
    private readonly exchange: string,
    rabbit: RabbitDeclareOptions,
  ) {
    transport.onConnect(async (ch) => {
      const args = transientQueueArgs(rabbit);
      await ch.assertQueue(this.replyQueue, { durable: false, autoDelete: false, ...(args ? { arguments: args } : {}) });
    });
    transport.consume(this.replyQueue, (d) => {
      d.ack();
      let reply: Record<string, unknown>;
      try {
        reply = decodeBody(d.body);
      } catch {
        return;
      }
      const waiter = this.pending.get(String(reply._msg_id));
      if (!waiter) return;
      if (typeof reply.failure === 'string') {
        this.pending.delete(String(reply._msg_id));
        waiter.reject(parseFailure(reply.failure));
        return;
      }
      if (reply.result !== undefined && reply.result !== null) waiter.result = reply.result;
      if (reply.ending === true) {
        this.pending.delete(String(reply._msg_id));
        waiter.resolve(waiter.result);
      }
    });
  }

  call<T>(routingKey: string, method: string, args: Record<string, unknown>, o: CallOptions): Promise<T> {
    const message = { method, args, ...(o.namespace ? { namespace: o.namespace } : {}), version: o.version, ...flattenContext(o.context) };
    return this.callMessage<T>(routingKey, message, o.timeoutSeconds);
  }

  /** A call of a message already built (method, args, version, `_context_*` keys); the call fields are added here. */
  async callMessage<T>(routingKey: string, message: Record<string, unknown>, timeoutSeconds: number): Promise<T> {
    const method = String(message.method);
    const msgId = newUniqueId();
    const answered = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(msgId);
        reject(driverError('RPC_TIMEOUT', `no reply from ${routingKey} to ${method} within ${timeoutSeconds} s`));
      }, timeoutSeconds * 1000);
      this.pending.set(msgId, {
        result: null,
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
    const sent = { ...message, _msg_id: msgId, _reply_q: this.replyQueue, _timeout: null, _unique_id: newUniqueId() };
    try {
      await this.transport.publish(this.exchange, routingKey, encodeEnvelope(sent), { expiration: String(timeoutSeconds * 1000) }, timeoutSeconds * 1000);
    } catch (err) {
      this.pending.get(msgId)?.reject(driverError('BROKER_UNREACHABLE', `cannot send ${method} to ${routingKey}: ${(err as Error).message}`));
    }
    return answered as Promise<T>;
  }
}

/** A reply's `failure` as the caller raises it. */
export function parseFailure(text: string): RemoteFailure {
  try {
    const f = JSON.parse(text) as { class?: string; module?: string; message?: string; kwargs?: Record<string, unknown> };
    return new RemoteFailure(f.class ?? 'RemoteError', f.module ?? 'builtins', f.message ?? 'remote failure', f.kwargs ?? {});
  } catch {
    return new RemoteFailure('RemoteError', 'builtins', text.slice(0, 500), {});
  }
}
