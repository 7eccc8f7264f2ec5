import { connect, type Channel, type ChannelModel } from 'amqplib';
import { decodeBody, encodeEnvelope, newUniqueId } from '../../driver/rpc/envelope.js';

export const AMQP_URL = process.env.BERTH_TEST_AMQP ?? 'amqp://guest:guest@127.0.0.1:5672';

export interface Collected {
  routingKey: string;
  message: Record<string, unknown>;
}

/** A test-side AMQP peer: publishes oslo-shaped requests and collects replies and events. */
export class AmqpPeer {
  private constructor(
    private readonly conn: ChannelModel,
    readonly ch: Channel,
  ) {}

  static async open(url = AMQP_URL): Promise<AmqpPeer> {
    const conn = await connect(url);
    const ch = await conn.createChannel();
    return new AmqpPeer(conn, ch);
  }

  cast(exchange: string, routingKey: string, message: Record<string, unknown>): void {
    this.ch.publish(exchange, routingKey, encodeEnvelope({ _unique_id: newUniqueId(), ...message }), {
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      deliveryMode: 2,
    });
  }

  publishRaw(exchange: string, routingKey: string, body: Buffer, contentType: string | null = 'application/json'): void {
    this.ch.publish(exchange, routingKey, body, contentType ? { contentType } : {});
  }

  /** An RPC call; resolves with the final reply (heartbeats are counted, not returned). */
  async call(
    exchange: string,
    routingKey: string,
    message: Record<string, unknown>,
    timeoutMs = 15_000,
  ): Promise<{ reply: Record<string, unknown>; heartbeats: number }> {
    const replyQ = `reply_${newUniqueId()}`;
    await this.ch.assertQueue(replyQ, { exclusive: true, autoDelete: true });
    const msgId = newUniqueId();
    let heartbeats = 0;
    const result = new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply to ${String(message.method)} within ${timeoutMs} ms`)), timeoutMs);
      void this.ch.consume(
        replyQ,
        (msg) => {
          if (!msg) return;
          const reply = decodeBody(msg.content);
          if (reply._msg_id !== msgId) return;
          if (reply.ending) {
            clearTimeout(timer);
            resolve(reply);
          } else heartbeats++;
        },
        { noAck: true },
      );
    });
    this.cast(exchange, routingKey, { ...message, _msg_id: msgId, _reply_q: replyQ, _timeout: message._timeout ?? null });
    const reply = await result;
    await this.ch.deleteQueue(replyQ).catch(() => undefined);
    return { reply, heartbeats };
  }

  /** Collects every message published to `exchange` with one of `keys`. */
  async listen(exchange: string, keys: string[]): Promise<Collector> {
    const { queue } = await this.ch.assertQueue('', { exclusive: true, autoDelete: true });
    for (const k of keys) await this.ch.bindQueue(queue, exchange, k);
    const c = new Collector();
    await this.ch.consume(
      queue,
      (msg) => {
        if (msg) c.push({ routingKey: msg.fields.routingKey, message: decodeBody(msg.content) });
      },
      { noAck: true },
    );
    return c;
  }

  async close(): Promise<void> {
    await this.conn.close().catch(() => undefined);
  }
}

export class Collector {
  readonly items: Collected[] = [];
  private waiters: (() => void)[] = [];
  push(c: Collected): void {
    this.items.push(c);
    this.waiters.splice(0).forEach((w) => w());
  }

  async waitFor(pred: (c: Collected) => boolean, timeoutMs = 15_000, what = 'message'): Promise<Collected> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.items.find(pred);
      if (hit) return hit;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; saw ${this.items.map((i) => i.message.event_type ?? i.routingKey).join(', ')}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
}

export function eventType(name: string): (c: Collected) => boolean {
  return (c) => c.message.event_type === name;
}
