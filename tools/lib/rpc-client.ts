import { silentLogger, type Logger } from '../../common/log.js';
import { BerthError } from '../../common/errors.js';
import { decodeBody, encodeEnvelope, newUniqueId } from '../../driver/rpc/envelope.js';
import { AmqpTransport } from '../../driver/rpc/transport.js';
import { RemoteFailure } from '../../driver/rpc/caller.js';
import { transientQueueArgs, type RabbitDeclareOptions } from '../../driver/rpc/topology.js';

/**
 * An oslo RPC client (what nova-api or nova-conductor is to a compute node): casts, calls with a
 * reply queue `reply_<hex32>`, and a listener for notifications.
 */
export interface RpcClientOptions { url: string; exchange: string; rabbit: RabbitDeclareOptions; log?: Logger; connectTimeoutMs?: number }

export { RemoteFailure };

export class RpcClient {
  private readonly transport: AmqpTransport;
  private readonly replyQueue = `reply_${newUniqueId()}`;
  private readonly pending = new Map<string, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private listeners: ((routingKey: string, msg: Record<string, unknown>) => void)[] = [];
  private readonly eventQueue = `berth-cli-events_${newUniqueId()}`;
  private eventKeys: string[] = [];

  constructor(private readonly opts: RpcClientOptions) {
    this.transport = new AmqpTransport({ url: opts.url, heartbeatSeconds: 30, retryMaxSeconds: 2, prefetch: 0, log: opts.log ?? silentLogger(), connectionName: `berth-cli:${process.pid}` });
    this.transport.onConnect(async (ch) => {
      const args = transientQueueArgs(opts.rabbit);
      await ch.assertQueue(this.replyQueue, { durable: false, autoDelete: false, ...(args ? { arguments: args } : {}) });
      await ch.assertQueue(this.eventQueue, { durable: false, autoDelete: true, exclusive: true });
      for (const k of this.eventKeys) await ch.bindQueue(this.eventQueue, opts.exchange, k);
    });
    this.transport.consume(this.replyQueue, (d) => {
      d.ack();
      let reply: Record<string, unknown>;
      try { reply = decodeBody(d.body); } catch { return; }
      const waiter = this.pending.get(String(reply._msg_id));
      if (!waiter || reply.ending !== true) return;
      this.pending.delete(String(reply._msg_id));
      if (typeof reply.failure === 'string') {
        const f = JSON.parse(reply.failure) as { class: string; module: string; message: string; kwargs?: Record<string, unknown> };
        waiter.reject(new RemoteFailure(f.class, f.module, f.message, f.kwargs ?? {}));
      } else waiter.resolve(reply.result);
    });
    this.transport.consume(this.eventQueue, (d) => {
      d.ack();
      try { const m = decodeBody(d.body); this.listeners.forEach((l) => l(String(m.event_type ?? ''), m)); } catch { /* not ours */ }
    });
  }

  /** Connects; `eventKeys` are the notification routing keys to listen on (e.g. versioned_notifications.info). */
  async connect(eventKeys: string[] = []): Promise<void> {
    this.eventKeys = eventKeys;
    const timeout = this.opts.connectTimeoutMs ?? 10_000;
    const started = this.transport.start();
    await Promise.race([started, new Promise((_, reject) => setTimeout(() => reject(new BerthError('BROKER_UNREACHABLE', `cannot reach the broker at ${this.opts.url.replace(/\/\/[^@]*@/, '//')} within ${timeout / 1000}s`, { status: 503 })), timeout))]);
  }

  onEvent(fn: (eventType: string, msg: Record<string, unknown>) => void): void { this.listeners.push(fn); }

  async cast(routingKey: string, message: Record<string, unknown>): Promise<void> {
    await this.transport.publish(this.opts.exchange, routingKey, encodeEnvelope({ ...message, _unique_id: newUniqueId() }));
  }

  async call<T>(routingKey: string, message: Record<string, unknown>, timeoutSeconds: number): Promise<T> {
    const msgId = newUniqueId();
    const result = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(msgId);
        reject(new BerthError('RPC_TIMEOUT', `no reply from ${routingKey} to ${String(message.method)} within ${timeoutSeconds}s (is the compute service running?)`, { status: 504 }));
      }, timeoutSeconds * 1000);
      this.pending.set(msgId, { resolve: (v) => { clearTimeout(timer); resolve(v); }, reject: (e) => { clearTimeout(timer); reject(e); } });
    });
    await this.transport.publish(this.opts.exchange, routingKey, encodeEnvelope({ ...message, _msg_id: msgId, _reply_q: this.replyQueue, _timeout: null, _unique_id: newUniqueId() }), { expiration: String(timeoutSeconds * 1000) });
    return result as Promise<T>;
  }

  async close(): Promise<void> { await this.transport.close(); }
}
