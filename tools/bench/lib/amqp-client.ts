import { connect, type Channel, type ChannelModel } from 'amqplib';
import { decodeBody, encodeEnvelope, newUniqueId } from '../../../driver/rpc/envelope.js';

export const AMQP_URL = process.env.BERTH_BENCH_AMQP ?? 'amqp://guest:guest@127.0.0.1:5672';

/**
 * The benchmarks' side of the broker, on plain amqplib so that it is neutral between the servers
 * it measures: oslo-shaped casts, calls answered on one persistent reply queue (as an oslo
 * caller keeps one per process), and a notification listener that stamps each event on arrival.
 */
export interface NotificationEvent {
  eventType: string;
  uuid: string | null;
  atNs: bigint;
}

export class BenchClient {
  private readonly replyQueue = `reply_${newUniqueId()}`;
  private readonly pending = new Map<string, { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private readonly listeners = new Set<(e: NotificationEvent) => void>();

  private constructor(
    private readonly conn: ChannelModel,
    private readonly ch: Channel,
  ) {}

  static async open(url = AMQP_URL): Promise<BenchClient> {
    // TCP_NODELAY, as py-amqp sets it for oslo callers; without it Nagle's algorithm holds small publishes back.
    const conn = await connect(url, { noDelay: true, clientProperties: { connection_name: `berth-bench:${process.pid}` } });
    const client = new BenchClient(conn, await conn.createChannel());
    await client.startReplies();
    return client;
  }

  private async startReplies(): Promise<void> {
    await this.ch.assertQueue(this.replyQueue, { exclusive: true, durable: false, arguments: { 'x-expires': 1_800_000 } });
    await this.ch.consume(
      this.replyQueue,
      (msg) => {
        if (!msg) return;
        let reply: Record<string, unknown>;
        try {
          reply = decodeBody(msg.content);
        } catch {
          return;
        }
        const waiter = this.pending.get(String(reply._msg_id));
        // Call-monitor heartbeats (ending false) only say the server is still working.
        if (!waiter || reply.ending !== true) return;
        this.pending.delete(String(reply._msg_id));
        clearTimeout(waiter.timer);
        if (typeof reply.failure === 'string') waiter.reject(new Error(`remote failure: ${reply.failure.slice(0, 300)}`));
        else waiter.resolve(reply);
      },
      { noAck: true },
    );
  }

  cast(exchange: string, routingKey: string, message: Record<string, unknown>): void {
    this.ch.publish(exchange, routingKey, encodeEnvelope({ ...message, _unique_id: newUniqueId() }), {
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      deliveryMode: 2,
    });
  }

  /** One RPC call; resolves with the final reply or rejects after `timeoutMs`. */
  call(exchange: string, routingKey: string, message: Record<string, unknown>, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const msgId = newUniqueId();
    const done = new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(msgId);
        reject(new Error(`no reply to ${String(message.method)} on ${routingKey} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(msgId, { resolve, reject, timer });
    });
    this.ch.publish(
      exchange,
      routingKey,
      encodeEnvelope({ ...message, _msg_id: msgId, _reply_q: this.replyQueue, _timeout: null, _unique_id: newUniqueId() }),
      {
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        deliveryMode: 2,
        expiration: String(timeoutMs),
      },
    );
    return done;
  }

  /** Listens on `exchange` for notifications with the given routing keys (the exchange must exist). */
  async listen(exchange: string, keys: readonly string[]): Promise<void> {
    const { queue } = await this.ch.assertQueue('', { exclusive: true, autoDelete: true });
    for (const k of keys) await this.ch.bindQueue(queue, exchange, k);
    await this.ch.consume(
      queue,
      (msg) => {
        if (!msg) return;
        const atNs = process.hrtime.bigint();
        let body: Record<string, unknown>;
        try {
          body = decodeBody(msg.content);
        } catch {
          return;
        }
        const data = (body.payload as { 'nova_object.data'?: { uuid?: unknown } } | undefined)?.['nova_object.data'];
        const event = { eventType: String(body.event_type ?? ''), uuid: typeof data?.uuid === 'string' ? data.uuid : null, atNs };
        this.listeners.forEach((l) => l(event));
      },
      { noAck: true },
    );
  }

  /** Returns the function that stops this listener. */
  onEvent(fn: (e: NotificationEvent) => void): () => void {
    this.listeners.add(fn);
    return () => {
      this.listeners.delete(fn);
    };
  }

  /** Resolves at the first event matching `pred`, or rejects after `timeoutMs`. */
  waitForEvent(pred: (e: NotificationEvent) => boolean, timeoutMs: number, what: string): Promise<NotificationEvent> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        stop();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const stop = this.onEvent((e) => {
        if (pred(e)) {
          stop();
          clearTimeout(timer);
          resolve(e);
        }
      });
    });
  }

  /** Polls until `queue` exists (a server has declared it), at most `timeoutMs`. */
  async waitForQueue(queue: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // A failed check closes the channel it ran on, so each attempt gets its own.
      const ch = await this.conn.createChannel();
      ch.on('error', () => undefined);
      const found = await ch.checkQueue(queue).then(
        () => true,
        () => false,
      );
      await ch.close().catch(() => undefined);
      if (found) return;
      if (Date.now() > deadline) throw new Error(`queue ${queue} did not appear within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Deletes queues and exchanges a benchmark's servers declared under names of its own. */
  async removeTopology(names: { queues?: string[]; exchanges?: string[] }): Promise<void> {
    const ch = await this.conn.createChannel();
    ch.on('error', () => undefined);
    for (const q of names.queues ?? []) await ch.deleteQueue(q).catch(() => undefined);
    for (const x of names.exchanges ?? []) await ch.deleteExchange(x).catch(() => undefined);
    await ch.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    for (const w of this.pending.values()) {
      clearTimeout(w.timer);
      w.reject(new Error('client closed'));
    }
    this.pending.clear();
    await this.conn.close().catch(() => undefined);
  }
}
