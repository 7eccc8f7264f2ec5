import { strict as assert } from 'node:assert';
import { silentLogger } from '../../../common/log.js';
import { Dispatcher, type Endpoint } from '../../../driver/rpc/dispatcher.js';
import { encodeEnvelope } from '../../../driver/rpc/envelope.js';
import { RpcServer, type MessageLog } from '../../../driver/rpc/server.js';
import type { AmqpTransport } from '../../../driver/rpc/amqp-transport.js';
import type { Delivery } from '../../../driver/rpc/transport.js';

/** The transport seam of RpcServer: deliveries are handed in by the test, publishes recorded. */
class FakeTransport {
  readonly handlers = new Map<string, (d: Delivery) => void>();
  readonly published: Array<{ routingKey: string; body: Record<string, unknown> }> = [];
  onConnect(): void {}
  consume(queue: string, handler: (d: Delivery) => void): void {
    this.handlers.set(queue, handler);
  }
  async publish(_exchange: string, routingKey: string, body: Buffer): Promise<void> {
    const outer = JSON.parse(body.toString('utf8')) as { 'oslo.message': string };
    this.published.push({ routingKey, body: JSON.parse(outer['oslo.message']) as Record<string, unknown> });
  }
}

type Outcome = 'ack' | 'drop' | 'requeue';

function delivery(message: Record<string, unknown>): { d: Delivery; settled: Promise<Outcome> } {
  let settle!: (o: Outcome) => void;
  const settled = new Promise<Outcome>((r) => {
    settle = r;
  });
  const d: Delivery = {
    queue: 'compute',
    body: encodeEnvelope(message),
    contentType: 'application/json',
    redelivered: false,
    ack: () => settle('ack'),
    drop: () => settle('drop'),
    requeue: () => settle('requeue'),
  };
  return { d, settled };
}

/** A message log whose durability barrier the test releases by hand. */
class ManualLog implements MessageLog {
  readonly events: string[] = [];
  private waiting: Array<{ resolve(): void; reject(e: Error): void }> = [];
  async seen(): Promise<boolean> {
    return false;
  }
  async record(id: string): Promise<void> {
    this.events.push(`record ${id}`);
  }
  durable(): Promise<void> {
    this.events.push('durable');
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }
  release(err?: Error): void {
    for (const w of this.waiting.splice(0))
      if (err) w.reject(err);
      else w.resolve();
  }
  get pending(): number {
    return this.waiting.length;
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
async function until(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await tick();
  assert.ok(cond(), what);
}

describe('RPC server: nothing answered or acknowledged before the recorded work is durable', () => {
  let transport: FakeTransport;
  let log: ManualLog;
  let handled: string[];

  beforeEach(() => {
    transport = new FakeTransport();
    log = new ManualLog();
    handled = [];
    const endpoint: Endpoint = {
      name: 'Test',
      namespace: null,
      version: '6.0',
      methods: {
        work: {
          required: [],
          handler: () => {
            handled.push('work');
            return 'done';
          },
        },
      },
    };
    new RpcServer(transport as unknown as AmqpTransport, new Dispatcher([endpoint]), {
      exchange: 'nova',
      topic: 'compute',
      server: 'node1',
      rabbit: { amqp_durable_queues: false, amqp_auto_delete: false, rabbit_ha_queues: false, rabbit_quorum_queue: false, rabbit_transient_queues_ttl: 1800 },
      maxMessageBytes: 1 << 20,
      maxConcurrentLong: 4,
      log: silentLogger(),
      messageLog: log,
    });
  });

  it('acks a cast only once the barrier after its record has passed', async () => {
    const { d, settled } = delivery({ method: 'work', args: {}, version: '6.0', _unique_id: 'u1' });
    let outcome: Outcome | null = null;
    void settled.then((o) => {
      outcome = o;
    });
    transport.handlers.get('compute')!(d);
    await until('the barrier is reached', () => log.pending === 1);
    assert.deepEqual(log.events, ['record u1', 'durable']);
    assert.equal(outcome, null, 'not acked while the barrier is pending');
    log.release();
    assert.equal(await settled, 'ack');
  });

  it('replies to a call only once the barrier has passed', async () => {
    const { d, settled } = delivery({ method: 'work', args: {}, version: '6.0', _msg_id: 'm1', _reply_q: 'reply_q1', _unique_id: 'u2' });
    transport.handlers.get('compute')!(d);
    await until('the barrier is reached', () => log.pending === 1);
    assert.deepEqual(handled, ['work']);
    assert.equal(transport.published.length, 0, 'no reply while the barrier is pending');
    log.release();
    assert.equal(await settled, 'ack');
    assert.equal(transport.published[0]?.routingKey, 'reply_q1');
    assert.equal(transport.published[0]?.body.result, 'done');
  });

  it('hands the message back, unanswered, when the barrier fails', async () => {
    const { d, settled } = delivery({ method: 'work', args: {}, version: '6.0', _msg_id: 'm2', _reply_q: 'reply_q2', _unique_id: 'u3' });
    transport.handlers.get('compute')!(d);
    await until('the barrier is reached', () => log.pending === 1);
    log.release(new Error('EIO'));
    assert.equal(await settled, 'requeue');
    assert.equal(transport.published.length, 0);
  });
});
