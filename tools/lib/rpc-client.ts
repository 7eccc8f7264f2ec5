import { silentLogger, type Logger } from '../../common/log.js';
import { hasErrorCode } from '../../common/errors.js';
import { driverError } from '../../driver/errors.js';
import { decodeBody, encodeEnvelope, newUniqueId } from '../../driver/rpc/envelope.js';
import { AmqpTransport } from '../../driver/rpc/amqp-transport.js';
import type { TopologyChannel } from '../../driver/rpc/transport.js';
import { RpcCaller } from '../../driver/rpc/caller.js';
import type { Config } from '../../conf/options.js';

/**
 * An oslo RPC client (what nova-api or nova-conductor is to a compute node): casts, calls with a
 * reply queue `reply_<hex32>`, and a listener for notifications.
 */
export interface RpcClientOptions {
  url: string;
  exchange: string;
  /** [oslo_messaging_rabbit]: queue flags, failover, TLS. */
  rabbit: Config['oslo_messaging_rabbit'];
  log?: Logger;
  connectTimeoutMs?: number;
}

export class RpcClient {
  private readonly transport: AmqpTransport;
  private readonly caller: RpcCaller;
  private listeners: ((routingKey: string, msg: Record<string, unknown>) => void)[] = [];
  private readonly eventQueue = `berth-cli-events_${newUniqueId()}`;
  private eventKeys: string[] = [];
  private channel: TopologyChannel | null = null;

  constructor(private readonly opts: RpcClientOptions) {
    this.transport = new AmqpTransport({
      url: opts.url,
      // A command waits seconds, not minutes: rounds of attempts stay 2 s apart at most.
      rabbit: { ...opts.rabbit, heartbeat_timeout_threshold: 30, rabbit_interval_max: Math.min(opts.rabbit.rabbit_interval_max, 2) },
      prefetch: 0,
      log: opts.log ?? silentLogger(),
      connectionName: `berth-cli:${process.pid}`,
    });
    this.caller = new RpcCaller(this.transport, opts.exchange, opts.rabbit);
    this.transport.onConnect(async (ch) => {
      this.channel = ch;
      await ch.assertQueue(this.eventQueue, { durable: false, autoDelete: true, exclusive: true });
      for (const k of this.eventKeys) await ch.bindQueue(this.eventQueue, opts.exchange, k);
    });
    this.transport.consume(this.eventQueue, (d) => {
      d.ack();
      try {
        const m = decodeBody(d.body);
        this.listeners.forEach((l) => l(String(m.event_type ?? ''), m));
      } catch {
        /* not ours */
      }
    });
  }

  /** Connects; `eventKeys` are the notification routing keys to listen on (e.g. versioned_notifications.info). */
  async connect(eventKeys: string[] = []): Promise<void> {
    this.eventKeys = eventKeys;
    const timeout = this.opts.connectTimeoutMs ?? 10_000;
    const started = this.transport.start();
    await Promise.race([
      started,
      new Promise((_, reject) =>
        setTimeout(
          () => reject(driverError('BROKER_UNREACHABLE', `cannot reach the broker at ${this.opts.url.replace(/\/\/[^@]*@/, '//')} within ${timeout / 1000}s`)),
          timeout,
        ),
      ),
    ]);
  }

  /** The broker host this client is connected to (`host:port`), or null while it reconnects. */
  get connectedHost(): string | null {
    return this.transport.connectedHost;
  }

  onEvent(fn: (eventType: string, msg: Record<string, unknown>) => void): void {
    this.listeners.push(fn);
  }

  async cast(routingKey: string, message: Record<string, unknown>): Promise<void> {
    await this.transport.publish(this.opts.exchange, routingKey, encodeEnvelope({ ...message, _unique_id: newUniqueId() }));
  }

  async call<T>(routingKey: string, message: Record<string, unknown>, timeoutSeconds: number): Promise<T> {
    try {
      return await this.caller.callMessage<T>(routingKey, message, timeoutSeconds);
    } catch (err) {
      if (hasErrorCode(err, 'RPC_TIMEOUT')) throw driverError('RPC_TIMEOUT', `${err.message} (is the compute service running?)`);
      throw err;
    }
  }

  /**
   * Closes the connection once the broker has taken every message published: a cast just before
   * (a command without --wait) was otherwise lost when the process closed the connection at once.
   * A synchronous method on the same channel is answered only after the broker handled the
   * publishes before it.
   */
  async close(): Promise<void> {
    // Declaring its own event queue again (the same arguments: a no-op) is such a method.
    await this.channel?.assertQueue(this.eventQueue, { durable: false, autoDelete: true, exclusive: true }).catch(() => undefined);
    await this.transport.close();
  }
}
