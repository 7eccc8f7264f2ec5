import { EventEmitter } from 'node:events';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { Logger } from '../../common/log.js';
import { failoverPlan, hostLabel, openBrokerConnection, resolveBroker, type BrokerConnectOptions, type ResolvedBroker } from './broker-connect.js';
import type { FailoverPlan } from './failover.js';
import type { BrokerHost } from '../../common/transport-url.js';
import { MessageUndeliverable, waitFor, type Delivery, type PublishOptions, type Setup, type TopologyChannel, type Transport } from './transport.js';

/**
 * The only module that knows the broker. One connection, one channel (as oslo has it), to one host
 * of the transport URL at a time; on any connection or channel loss it fails over between the
 * hosts as oslo.messaging does (FailoverPlan) and re-runs every registered setup step
 * (declarations, consumers, the reply queue). Messages not yet acked when a channel dies are
 * redelivered by the broker, so an ack on a dead channel is simply dropped. Publishes wait for the
 * broker's confirm (oslo's confirm_publish) and are sent again on the next connection when the
 * confirm was lost: at least once, the receiver drops duplicates by `_unique_id`.
 */
export interface TransportOptions {
  url: string;
  rabbit: BrokerConnectOptions;
  prefetch: number;
  log: Logger;
  connectionName?: string;
  /** Budget of one connection attempt (kombu's connect_timeout). */
  connectTimeoutMs?: number;
  /** Injected for tests: the order hosts are shuffled in. */
  random?: () => number;
  /** Injected for tests: one connection attempt (openBrokerConnection by default). */
  open?: typeof openBrokerConnection;
}

export class AmqpTransport extends EventEmitter implements Transport {
  private model: ChannelModel | null = null;
  private channel: ConfirmChannel | null = null;
  private generation = 0;
  private closing = false;
  private readonly broker: ResolvedBroker;
  private readonly plan: FailoverPlan;
  private readonly setups: Setup[] = [];
  private readonly consumers: { queue: string; handler: (d: Delivery) => void }[] = [];
  private readonly readyWaiters: (() => void)[] = [];
  private reconnectTimer: NodeJS.Timeout | null = null;
  /** Mandatory messages the broker returned, until their confirm arrives (the return comes first). */
  private returned: { routingKey: string; body: Buffer }[] = [];
  private host: BrokerHost | null = null;
  /** Why the broker closed a channel (a channel-level error such as 404), by channel. */
  private readonly channelErrors = new WeakMap<Channel, Error>();

  constructor(private readonly opts: TransportOptions) {
    super();
    this.broker = resolveBroker(opts.url, opts.rabbit);
    this.plan = failoverPlan(this.broker, opts.random);
  }

  get connected(): boolean {
    return this.channel !== null;
  }

  /** The broker host the transport is connected to (`host:port`), or null between connections. */
  get connectedHost(): string | null {
    return this.channel && this.host ? hostLabel(this.host) : null;
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
    return waitFor(this.readyWaiters, timeoutMs);
  }

  private async connectOnce(): Promise<void> {
    if (this.closing) return;
    const host = this.plan.current;
    let opened: ChannelModel | null = null;
    try {
      const model = await (this.opts.open ?? openBrokerConnection)(this.broker, host, {
        connectionName: this.opts.connectionName ?? `berth-compute:${process.pid}`,
        timeoutMs: this.opts.connectTimeoutMs ?? 5000,
      });
      opened = model;
      if (this.closing) throw new Error('transport closed');
      const channel = await model.createConfirmChannel();
      const gen = ++this.generation;
      model.on('error', (err: Error) => this.opts.log.warn({ err: err.message, host: hostLabel(host) }, 'AMQP connection error'));
      model.on('close', () => this.lost(gen, 'connection closed'));
      channel.on('error', (err: Error) => {
        this.channelErrors.set(channel, err);
        this.opts.log.warn({ err: err.message }, 'AMQP channel error');
      });
      channel.on('close', () => {
        if (gen === this.generation) void model.close().catch(() => undefined);
      });
      channel.on('return', (msg: ConsumeMessage) => {
        this.returned.push({ routingKey: msg.fields.routingKey, body: msg.content });
      });
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
      this.host = host;
      this.returned = [];
      this.plan.connected();
      this.opts.log.info({ generation: gen, host: hostLabel(host) }, 'connected to the broker');
      this.readyWaiters.splice(0).forEach((w) => w());
      this.emit('connected', hostLabel(host));
    } catch (err) {
      // A connection that failed half-way through set-up is closed, not leaked.
      await opened?.close().catch(() => undefined);
      this.model = null;
      this.channel = null;
      if (this.closing) return;
      const delay = this.plan.failed();
      this.opts.log.warn(
        { err: (err as Error).message, host: hostLabel(host), next: hostLabel(this.plan.current), retry_in_ms: delay },
        'broker connection failed',
      );
      this.scheduleReconnect(delay);
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
    const delay = this.plan.lost();
    this.opts.log.warn({ why, host: this.host ? hostLabel(this.host) : null, retry_in_ms: delay }, 'lost the broker; reconnecting');
    this.emit('disconnected');
    this.scheduleReconnect(delay);
  }

  private scheduleReconnect(delayMs: number): void {
    if (this.closing || this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.connectOnce();
    }, delayMs);
  }

  /**
   * Publishes once connected and waits for the broker's confirm. A publish whose connection dies
   * before the confirm is sent again on the next connection (to whichever host), until `waitMs`
   * has passed: the message may then arrive twice, never zero times unless this throws. A
   * mandatory message with no queue to go to throws MessageUndeliverable.
   */
  async publish(exchange: string, routingKey: string, body: Buffer, opts: PublishOptions = {}, waitMs = 30_000): Promise<void> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      await this.waitReady(Math.max(0, deadline - Date.now()));
      const ch = this.channel!;
      // The executor runs at once: a throw from publish is seen here, before anything was sent.
      let thrown: Error | null = null;
      const confirmed = new Promise<void>((resolve, reject) => {
        try {
          ch.publish(
            exchange,
            routingKey,
            body,
            {
              contentType: 'application/json',
              contentEncoding: 'utf-8',
              deliveryMode: 2,
              priority: 0,
              headers: {},
              mandatory: opts.mandatory ?? false,
              ...(opts.expiration ? { expiration: opts.expiration } : {}),
            },
            (err) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve()),
          );
        } catch (err) {
          thrown = err as Error;
          reject(thrown);
        }
      });
      // A message that cannot be encoded (a routing key over 255 bytes) fails at once; only a
      // channel that is closing is waited out.
      if (thrown && !/closed/i.test((thrown as Error).message)) {
        confirmed.catch(() => undefined);
        throw thrown;
      }
      try {
        await confirmed;
      } catch (err) {
        // The broker closed the channel because of this publish (e.g. 404, no such exchange): the
        // same message would fail the same way on any node.
        const refused = this.channelErrors.get(ch);
        if (refused) throw refused;
        if (Date.now() >= deadline || this.closing) throw err;
        this.opts.log.info({ err: (err as Error).message, routing_key: routingKey }, 'publish not confirmed; sending again once reconnected');
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if (opts.mandatory) {
        const i = this.returned.findIndex((r) => r.routingKey === routingKey && r.body.equals(body));
        if (i >= 0) {
          this.returned.splice(i, 1);
          throw new MessageUndeliverable(`no queue for routing key ${routingKey}`);
        }
      }
      return;
    }
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
