import { strict as assert } from 'node:assert';
import sinon from 'sinon';
import { silentLogger } from '../../../common/log.js';
import { Dispatcher, type Endpoint } from '../../../driver/rpc/dispatcher.js';
import { encodeEnvelope } from '../../../driver/rpc/envelope.js';
import { RpcServer } from '../../../driver/rpc/server.js';
import type { AmqpTransport } from '../../../driver/rpc/amqp-transport.js';
import { MessageUndeliverable, type Delivery } from '../../../driver/rpc/transport.js';

/** A transport whose broker returns replies while the caller's reply queue is missing. */
class ReturningTransport {
  readonly handlers = new Map<string, (d: Delivery) => void>();
  readonly attempts: number[] = [];
  delivered = 0;
  /** Set by the test: the caller has declared its reply queue again (on the node it moved to). */
  replyQueueExists = false;
  onConnect(): void {}
  consume(queue: string, handler: (d: Delivery) => void): void {
    this.handlers.set(queue, handler);
  }
  async publish(): Promise<void> {
    this.attempts.push(Date.now());
    if (!this.replyQueueExists) throw new MessageUndeliverable('no queue for routing key reply_q');
    this.delivered++;
  }
}

const ENDPOINT: Endpoint = { name: 'Test', namespace: null, version: '6.0', methods: { work: { required: [], handler: () => 'done' } } };
const RABBIT = { amqp_durable_queues: false, amqp_auto_delete: false, rabbit_ha_queues: false, rabbit_quorum_queue: false, rabbit_transient_queues_ttl: 1800 };

function call(transport: ReturningTransport): Promise<string> {
  return new Promise((resolve) => {
    const d: Delivery = {
      queue: 'compute',
      body: encodeEnvelope({ method: 'work', args: {}, version: '6.0', _msg_id: 'm1', _reply_q: 'reply_q', _unique_id: 'u1' }),
      contentType: 'application/json',
      redelivered: false,
      ack: () => resolve('ack'),
      drop: () => resolve('drop'),
      requeue: () => resolve('requeue'),
    };
    transport.handlers.get('compute')!(d);
  });
}

/** oslo's reply loop: while the reply queue is missing, retry every 0.25 s for kombu_missing_consumer_retry_timeout. */
describe('RPC server: a reply to a caller that is failing over', () => {
  let clock: sinon.SinonFakeTimers;
  let transport: ReturningTransport;
  beforeEach(() => {
    clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    transport = new ReturningTransport();
    new RpcServer(transport as unknown as AmqpTransport, new Dispatcher([ENDPOINT]), {
      exchange: 'nova',
      topic: 'compute',
      server: 'node1',
      rabbit: RABBIT,
      maxMessageBytes: 1 << 20,
      maxConcurrentLong: 4,
      log: silentLogger(),
      missingReplyQueueRetryMs: 5000,
    });
  });
  afterEach(() => clock.restore());

  it('is retried every 0.25 s until the caller has declared its reply queue again, then the request is acked', async () => {
    const settled = call(transport);
    await clock.tickAsync(1000);
    assert.equal(transport.delivered, 0);
    assert.equal(transport.attempts.length, 5, 'at 0, 0.25, 0.5, 0.75 and 1 s');
    transport.replyQueueExists = true;
    await clock.tickAsync(250);
    assert.equal(transport.delivered, 1);
    assert.equal(await settled, 'ack');
  });

  it('is abandoned after kombu_missing_consumer_retry_timeout; the request is still acked, not run again', async () => {
    const settled = call(transport);
    await clock.tickAsync(6000);
    assert.equal(await settled, 'ack');
    assert.equal(transport.delivered, 0);
    assert.equal(transport.attempts.length, 21, 'every 0.25 s for 5 s');
  });
});
