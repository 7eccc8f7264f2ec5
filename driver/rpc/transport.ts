/** A mandatory message the broker returned: no queue is bound to its routing key (oslo's MessageUndeliverable). */
export class MessageUndeliverable extends Error {
  readonly code = 'MESSAGE_UNDELIVERABLE';
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

/** A topology step: declarations run on every (re)connection before consumers start. */
export type Setup = (ch: TopologyChannel) => Promise<void>;

/**
 * The broker boundary: what the RPC server, the RPC caller and the notifier ask of a connection
 * to the broker. `AmqpTransport` (amqp-transport.ts) is the real one (amqplib); `MemoryTransport`
 * (test/fakes/transport.ts) is the in-process fake, and test/conformance/transport.ts holds both
 * to the same rules: topology steps run before consumers start; the default exchange routes by
 * queue name, a direct or topic exchange by binding key, a fanout one to every bound queue; a
 * message unsettled stays with its queue, a requeued one comes back marked redelivered, a dropped
 * one is gone; publishing waits for the connection.
 */
export interface Transport {
  readonly connected: boolean;
  /** Registers a topology step, run on every (re)connection before consumers start. */
  onConnect(setup: Setup): void;
  /** Consumes `queue` (declared by a topology step) on every (re)connection. */
  consume(queue: string, handler: (d: Delivery) => void): void;
  /** Connects, retrying until it succeeds or `close()` is called; resolves on the first success. */
  start(): Promise<void>;
  waitReady(timeoutMs?: number): Promise<void>;
  /** Publishes once connected (waiting up to `waitMs`); throws if the broker stays away. */
  publish(exchange: string, routingKey: string, body: Buffer, opts?: PublishOptions, waitMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * A promise settled when the transport connects: `waiters` is the transport's list, whose
 * functions it calls then; rejects after `timeoutMs` (if given) with the waiter taken off.
 */
export function waitFor(waiters: Array<() => void>, timeoutMs?: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer =
      timeoutMs === undefined
        ? null
        : setTimeout(() => {
            const i = waiters.indexOf(done);
            if (i >= 0) waiters.splice(i, 1);
            reject(new Error(`broker not reachable within ${timeoutMs} ms`));
          }, timeoutMs);
    const done = (): void => {
      if (timer) clearTimeout(timer);
      resolve();
    };
    waiters.push(done);
  });
}
