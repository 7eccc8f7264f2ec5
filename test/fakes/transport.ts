import { MessageUndeliverable, waitFor, type Delivery, type PublishOptions, type TopologyChannel, type Transport } from '../../driver/rpc/transport.js';

type Setup = (ch: TopologyChannel) => Promise<void>;

interface Message {
  body: Buffer;
  contentType: string;
  redelivered: boolean;
}

interface Consumer {
  owner: MemoryTransport;
  handler: (d: Delivery) => void;
}

interface Queue {
  ready: Message[];
  consumers: Consumer[];
  /** Round-robin position among the consumers. */
  next: number;
}

/**
 * One in-process broker shared by the MemoryTransports of a test: exchanges (direct, topic,
 * fanout, and the default one that routes by queue name), queues and bindings, as RabbitMQ has
 * them for what Berth uses. Durability, expiry and queue arguments are accepted and ignored.
 */
export class MemoryBroker {
  private readonly exchanges = new Map<string, { type: 'topic' | 'fanout' | 'direct'; bindings: Array<{ queue: string; key: string }> }>();
  readonly queues = new Map<string, Queue>();

  topology(): TopologyChannel {
    return {
      assertExchange: async (name, type) => {
        if (!this.exchanges.has(name)) this.exchanges.set(name, { type, bindings: [] });
      },
      assertQueue: async (name) => {
        if (!this.queues.has(name)) this.queues.set(name, { ready: [], consumers: [], next: 0 });
      },
      bindQueue: async (queue, exchange, key) => {
        const ex = this.exchanges.get(exchange);
        if (!ex || !this.queues.has(queue)) throw new Error(`NOT_FOUND: cannot bind ${queue} to ${exchange}`);
        if (!ex.bindings.some((b) => b.queue === queue && b.key === key)) ex.bindings.push({ queue, key });
      },
    };
  }

  /** The queues a message published to `exchange` with `routingKey` lands in (none: it is dropped). */
  route(exchange: string, routingKey: string): string[] {
    if (exchange === '') return this.queues.has(routingKey) ? [routingKey] : [];
    const ex = this.exchanges.get(exchange);
    if (!ex) throw new Error(`NOT_FOUND: no exchange ${exchange}`);
    const hit = ex.bindings.filter((b) => ex.type === 'fanout' || (ex.type === 'direct' ? b.key === routingKey : topicMatches(b.key, routingKey)));
    return [...new Set(hit.map((b) => b.queue))];
  }

  enqueue(queue: string, message: Message, atHead = false): void {
    const q = this.queues.get(queue);
    if (!q) return;
    if (atHead) q.ready.unshift(message);
    else q.ready.push(message);
    this.dispatch(queue);
  }

  addConsumer(queue: string, consumer: Consumer): void {
    const q = this.queues.get(queue);
    if (!q) throw new Error(`NOT_FOUND: no queue ${queue}`);
    q.consumers.push(consumer);
    this.dispatch(queue);
  }

  removeConsumers(owner: MemoryTransport): void {
    for (const q of this.queues.values()) q.consumers = q.consumers.filter((c) => c.owner !== owner);
  }

  /** Hands what is ready to the queue's consumers in turn, each on a later tick (as a socket would). */
  private dispatch(queue: string): void {
    const q = this.queues.get(queue)!;
    while (q.ready.length && q.consumers.length) {
      const message = q.ready.shift()!;
      const consumer = q.consumers[q.next++ % q.consumers.length]!;
      setImmediate(() => consumer.owner.deliver(queue, message, consumer.handler));
    }
  }
}

/** RabbitMQ's topic match: words split on `.`, `*` one word, `#` zero or more. */
export function topicMatches(pattern: string, key: string): boolean {
  const match = (p: string[], k: string[]): boolean => {
    if (p.length === 0) return k.length === 0;
    const [head, ...rest] = p;
    if (head === '#') return match(rest, k) || (k.length > 0 && match(p, k.slice(1)));
    if (k.length === 0) return false;
    return (head === '*' || head === k[0]) && match(rest, k.slice(1));
  };
  return match(pattern.split('.'), key.split('.'));
}

/**
 * The in-process Transport: what AmqpTransport does against RabbitMQ, against a MemoryBroker.
 * A message delivered and not settled when the transport closes goes back to its queue, marked
 * redelivered, as the broker does when a channel closes.
 */
export class MemoryTransport implements Transport {
  private readonly setups: Setup[] = [];
  private readonly consumers: Array<{ queue: string; handler: (d: Delivery) => void }> = [];
  private readonly unsettled = new Set<{ queue: string; message: Message }>();
  private readonly readyWaiters: Array<() => void> = [];
  private open = false;
  /** Every message published through this transport, for tests that read what was sent. */
  readonly published: Array<{ exchange: string; routingKey: string; body: Buffer; opts: PublishOptions }> = [];

  constructor(readonly broker: MemoryBroker = new MemoryBroker()) {}

  get connected(): boolean {
    return this.open;
  }

  onConnect(setup: Setup): void {
    this.setups.push(setup);
  }

  consume(queue: string, handler: (d: Delivery) => void): void {
    this.consumers.push({ queue, handler });
    if (this.open) this.broker.addConsumer(queue, { owner: this, handler });
  }

  async start(): Promise<void> {
    if (this.open) return;
    const topology = this.broker.topology();
    for (const s of this.setups) await s(topology);
    for (const c of this.consumers) this.broker.addConsumer(c.queue, { owner: this, handler: c.handler });
    this.open = true;
    this.readyWaiters.splice(0).forEach((w) => w());
  }

  waitReady(timeoutMs?: number): Promise<void> {
    return this.open ? Promise.resolve() : waitFor(this.readyWaiters, timeoutMs);
  }

  async publish(exchange: string, routingKey: string, body: Buffer, opts: PublishOptions = {}, waitMs = 30_000): Promise<void> {
    await this.waitReady(waitMs);
    this.published.push({ exchange, routingKey, body, opts });
    const queues = this.broker.route(exchange, routingKey);
    // As the broker returns it, and AmqpTransport then throws.
    if (opts.mandatory && queues.length === 0)
      throw new MessageUndeliverable(`no queue is bound to ${JSON.stringify(routingKey)} on exchange ${JSON.stringify(exchange)}`);
    for (const queue of queues) {
      this.broker.enqueue(queue, { body: Buffer.from(body), contentType: 'application/json', redelivered: false });
    }
  }

  async close(): Promise<void> {
    this.open = false;
    this.broker.removeConsumers(this);
    const back = [...this.unsettled];
    this.unsettled.clear();
    for (const u of back) this.broker.enqueue(u.queue, { ...u.message, redelivered: true }, true);
  }

  /** Called by the broker: one message to one of this transport's consumers. */
  deliver(queue: string, message: Message, handler: (d: Delivery) => void): void {
    const held = { queue, message };
    if (!this.open) {
      this.broker.enqueue(queue, message, true);
      return;
    }
    this.unsettled.add(held);
    const settle = (then?: () => void): void => {
      if (!this.unsettled.delete(held)) return;
      then?.();
    };
    handler({
      queue,
      body: message.body,
      contentType: message.contentType,
      redelivered: message.redelivered,
      ack: () => settle(),
      drop: () => settle(),
      requeue: () => settle(() => this.broker.enqueue(queue, { ...message, redelivered: true }, true)),
    });
  }
}
