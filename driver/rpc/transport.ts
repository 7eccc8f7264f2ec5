import { EventEmitter } from 'node:events';
import { connect, type Channel, type ChannelModel, type ConsumeMessage, type SocketOptions } from 'amqplib';
import { backoffDelay } from '../../common/backoff.js';
import type { Logger } from '../../common/log.js';

/**
 * The only module that knows the broker. One connection, one channel (as oslo has it); on any
 * connection or channel loss it reconnects with capped exponential back-off and re-runs every
 * registered setup step (declarations, consumers). Messages not yet acked when a channel dies are
 * redelivered by the broker, so an ack on a dead channel is simply dropped.
 */
export interface TransportOptions {
  url: string;
  heartbeatSeconds: number;
  retryMaxSeconds: number;
  prefetch: number;
  log: Logger;
  connectionName?: string;
}

export interface Delivery {
  queue: string;
  body: Buffer;
  contentType: string | undefined;
  redelivered: boolean;
  /** Acknowledges on the channel the message came from; a no-op if that channel is gone. */
  ack(): void;
  /** Rejects without requeue (the message is dropped). */
  drop(): void;
  /** Hands the message back to the broker for redelivery. */
  requeue(): void;
}

export interface PublishOptions {
  expiration?: string;
  mandatory?: boolean;
}

export interface TopologyChannel {
  assertExchange(name: string, type: 'topic' | 'fanout' | 'direct', opts: { durable: boolean; autoDelete: boolean }): Promise<void>;
  assertQueue(name: string, opts: { durable: boolean; autoDelete: boolean; exclusive?: boolean; arguments?: Record<string, unknown> }): Promise<void>;
  bindQueue(queue: string, exchange: string, routingKey: string): Promise<void>;
}

type Setup = (ch: TopologyChannel) => Promise<void>;

export class AmqpTransport extends EventEmitter {
  private model: ChannelModel | null = null;
  private channel: Channel | null = null;
  private generation = 0;
  private closing = false;
  private attempt = 0;
  private readonly setups: Setup[] = [];
  private readonly consumers: { queue: string; handler: (d: Delivery) => void }[] = [];
  private readyWaiters: (() => void)[] = [];
  private reconnectTimer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: TransportOptions) {
    super();
  }

  get connected(): boolean {
    return this.channel !== null;
  }

  /** Registers a topology step, run on every (re)connection before consumers start. */
  onConnect(setup: Setup): void {
    this.setups.push(setup);
  }

  consume(queue: string, handler: (d: Delivery) => void): void {
    this.consumers.push({ queue, handler });
  }

  /** Connects, retrying until it succeeds or `close()` is called; resolves on the first success. */
  start(): Promise<void> {
    const ready = this.waitReady();
    void this.connectOnce();
    return ready;
  }

  waitReady(timeoutMs?: number): Promise<void> {
    if (this.channel) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer =
        timeoutMs === undefined
          ? null
          : setTimeout(() => {
              this.readyWaiters = this.readyWaiters.filter((w) => w !== done);
              reject(new Error(`broker not reachable within ${timeoutMs} ms`));
            }, timeoutMs);
      const done = () => {
        if (timer) clearTimeout(timer);
        resolve();
      };
      this.readyWaiters.push(done);
    });
  }

  private async connectOnce(): Promise<void> {
    if (this.closing) return;
    let opened: ChannelModel | null = null;
    try {
      const model = await connect(toAmqpUrl(this.opts.url, this.opts.heartbeatSeconds), {
        // Replies are small and latency-bound: no Nagle delay.
        noDelay: true,
        clientProperties: { connection_name: this.opts.connectionName ?? `berth-compute:${process.pid}` },
      } as SocketOptions);
      opened = model;
      const channel = await model.createChannel();
      const gen = ++this.generation;
      model.on('error', (err: Error) => this.opts.log.warn({ err: err.message }, 'AMQP connection error'));
      model.on('close', () => this.lost(gen, 'connection closed'));
      channel.on('error', (err: Error) => this.opts.log.warn({ err: err.message }, 'AMQP channel error'));
      channel.on('close', () => {
        if (gen === this.generation) void model.close().catch(() => undefined);
      });
      channel.on('return', (msg) => this.opts.log.warn({ routing_key: msg.fields.routingKey }, 'reply returned unroutable: caller gone, dropped'));
      if (this.opts.prefetch > 0) await channel.prefetch(this.opts.prefetch, false);
      const topo = topologyOf(channel);
      for (const s of this.setups) await s(topo);
      for (const c of this.consumers) {
        await channel.consume(
          c.queue,
          (msg) => {
            if (msg) c.handler(this.delivery(channel, gen, c.queue, msg));
          },
          { noAck: false },
        );
      }
      this.model = model;
      this.channel = channel;
      this.attempt = 0;
      this.opts.log.info({ generation: gen }, 'connected to the broker');
      const waiters = this.readyWaiters;
      this.readyWaiters = [];
      waiters.forEach((w) => w());
      this.emit('connected');
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'broker connection failed');
      // A connection that failed half-way through set-up is closed, not leaked.
      await opened?.close().catch(() => undefined);
      this.model = null;
      this.channel = null;
      this.scheduleReconnect();
    }
  }

  private delivery(channel: Channel, gen: number, queue: string, msg: ConsumeMessage): Delivery {
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      if (gen !== this.generation || this.channel !== channel) return;
      try {
        fn();
      } catch (err) {
        this.opts.log.warn({ err: (err as Error).message }, 'ack failed; the broker will redeliver');
      }
    };
    return {
      queue,
      body: msg.content,
      contentType: msg.properties.contentType as string | undefined,
      redelivered: msg.fields.redelivered,
      ack: () => settle(() => channel.ack(msg)),
      drop: () => settle(() => channel.reject(msg, false)),
      requeue: () => settle(() => channel.reject(msg, true)),
    };
  }

  private lost(gen: number, why: string): void {
    if (gen !== this.generation) return;
    this.generation++;
    this.model = null;
    this.channel = null;
    if (this.closing) return;
    this.opts.log.warn({ why }, 'lost the broker; reconnecting');
    this.emit('disconnected');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closing || this.reconnectTimer) return;
    const delay = backoffDelay(this.attempt++, { baseMs: 500, maxMs: this.opts.retryMaxSeconds * 1000, jitter: [0.8, 1.2] });
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.connectOnce();
    }, delay);
  }

  /** Publishes once connected (waiting up to `waitMs`); throws if the broker stays away. */
  async publish(exchange: string, routingKey: string, body: Buffer, opts: PublishOptions = {}, waitMs = 30_000): Promise<void> {
    await this.waitReady(waitMs);
    const ch = this.channel!;
    ch.publish(exchange, routingKey, body, {
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      deliveryMode: 2,
      priority: 0,
      headers: {},
      mandatory: opts.mandatory ?? false,
      ...(opts.expiration ? { expiration: opts.expiration } : {}),
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const model = this.model;
    this.model = null;
    this.channel = null;
    await model?.close().catch(() => undefined);
  }
}

/**
 * oslo's `rabbit://user:pass@host:port/vhost` as amqplib takes it. A path of `/` or none is the
 * default vhost `/` (as kombu reads it); only the first of several comma-separated hosts is used.
 */
export function toAmqpUrl(transportUrl: string, heartbeatSeconds: number): string {
  const m = /^(?:rabbit|amqp):\/\/(?:([^@/]*)@)?([^/?]+)(\/[^?]*)?(\?.*)?$/.exec(transportUrl);
  if (!m) throw new Error(`transport_url must look like rabbit://user:pass@host:5672/vhost, got ${transportUrl.replace(/\/\/[^@]*@/, '//***@')}`);
  const [, auth, hosts, path, query] = m;
  const host = hosts!.split(',')[0]!.replace(/^[^@]*@/, '');
  const vhost = !path || path === '/' ? '' : path;
  const params = new URLSearchParams((query ?? '').replace(/^\?/, ''));
  if (!params.has('heartbeat')) params.set('heartbeat', String(heartbeatSeconds));
  return `amqp://${auth ? `${auth}@` : ''}${host}${vhost}?${params.toString()}`;
}

function topologyOf(ch: Channel): TopologyChannel {
  return {
    assertExchange: async (name, type, o) => {
      await ch.assertExchange(name, type, { durable: o.durable, autoDelete: o.autoDelete });
    },
    assertQueue: async (name, o) => {
      await ch.assertQueue(name, {
        durable: o.durable,
        autoDelete: o.autoDelete,
        exclusive: o.exclusive ?? false,
        ...(o.arguments ? { arguments: o.arguments } : {}),
      });
    },
    bindQueue: async (q, ex, key) => {
      await ch.bindQueue(q, ex, key);
    },
  };
}
