import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { MessageUndeliverable, type Delivery, type TopologyChannel, type Transport } from '../../driver/rpc/transport.js';

/** What the suite needs: transports (not started) on one broker, and a clean-up. */
export interface TransportHarness {
  /** A new transport on the broker under test, not yet started. */
  open(): Transport;
  cleanup(): Promise<void>;
}

/** Deliveries of one consumer, taken one at a time in arrival order. */
class Inbox {
  private readonly waiting: Delivery[] = [];
  private wake: (() => void) | null = null;
  readonly handler = (d: Delivery): void => {
    this.waiting.push(d);
    this.wake?.();
  };

  async next(ms = 5000): Promise<Delivery> {
    const deadline = Date.now() + ms;
    while (this.waiting.length === 0) {
      const left = deadline - Date.now();
      assert.ok(left > 0, 'no delivery in time');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
    return this.waiting.shift()!;
  }
}

/**
 * The broker boundary (driver/rpc/transport.ts, `Transport`): the same rules for the amqplib
 * transport on RabbitMQ and the in-process MemoryTransport. Every queue is non-durable and
 * expires a minute after it is unused, so a failed run leaves nothing on a real broker.
 */
export function transportConformance(label: string, setup: () => Promise<TransportHarness>): void {
  describe(`Transport conformance: ${label}`, function () {
    this.timeout(30_000);
    let h: TransportHarness;
    let open: Transport[];
    let prefix: string;
    const name = (what: string): string => `${prefix}.${what}`;
    const queue = (ch: TopologyChannel, q: string): Promise<void> =>
      ch.assertQueue(q, { durable: false, autoDelete: false, arguments: { 'x-expires': 60_000 } });
    const text = (d: Delivery): string => d.body.toString('utf8');

    /** A started transport whose topology step declares `queues` and whose consumer of each gets an Inbox. */
    async function started(
      queues: string[],
      topology: (ch: TopologyChannel) => Promise<void> = async () => {},
    ): Promise<{ t: Transport; inbox: Record<string, Inbox> }> {
      const t = h.open();
      open.push(t);
      const inbox: Record<string, Inbox> = {};
      t.onConnect(async (ch) => {
        for (const q of queues) await queue(ch, q);
        await topology(ch);
      });
      for (const q of queues) t.consume(q, (inbox[q] = new Inbox()).handler);
      await t.start();
      return { t, inbox };
    }

    beforeEach(async () => {
      h = await setup();
      open = [];
      prefix = `berth-conformance-${randomUUID().slice(0, 8)}`;
    });
    afterEach(async () => {
      for (const t of open) await t.close();
      await h.cleanup();
    });

    it('runs topology steps before consuming; the default exchange routes by queue name, as JSON, not redelivered', async () => {
      const q = name('direct');
      const { t, inbox } = await started([q]);
      assert.equal(t.connected, true);
      await t.publish('', q, Buffer.from('{"n":1}'));
      const d = await inbox[q]!.next();
      assert.deepEqual([d.queue, text(d), d.contentType, d.redelivered], [q, '{"n":1}', 'application/json', false]);
      d.ack();
    });

    it('a topic exchange routes by binding key (with * and #), a fanout one to every bound queue; an unbound key reaches nobody', async () => {
      const [a, b, all1, all2] = [name('a'), name('b'), name('all1'), name('all2')];
      const [topic, fanout] = [name('topic'), name('fanout')];
      const { t, inbox } = await started([a, b, all1, all2], async (ch) => {
        await ch.assertExchange(topic, 'topic', { durable: false, autoDelete: true });
        await ch.assertExchange(fanout, 'fanout', { durable: false, autoDelete: true });
        await ch.bindQueue(a, topic, 'compute.host-a');
        await ch.bindQueue(b, topic, 'notifications.*');
        await ch.bindQueue(b, topic, 'audit.#');
        await ch.bindQueue(all1, fanout, 'ignored');
        await ch.bindQueue(all2, fanout, 'ignored');
      });
      await t.publish(topic, 'compute.host-b', Buffer.from('nobody'));
      await t.publish(topic, 'compute.host-a', Buffer.from('to a'));
      await t.publish(topic, 'notifications.info', Buffer.from('to b by *'));
      await t.publish(topic, 'audit.x.y', Buffer.from('to b by #'));
      await t.publish(fanout, 'any', Buffer.from('to all'));
      // What a queue gets comes in publish order: a marker sent last shows nothing else came first.
      await t.publish('', a, Buffer.from('end'));
      const got = async (q: string, n: number): Promise<string[]> => {
        const out: string[] = [];
        for (let i = 0; i < n; i++) {
          const d = await inbox[q]!.next();
          d.ack();
          out.push(text(d));
        }
        return out;
      };
      assert.deepEqual(await got(a, 2), ['to a', 'end']);
      assert.deepEqual(await got(b, 2), ['to b by *', 'to b by #']);
      assert.deepEqual(await got(all1, 1), ['to all']);
      assert.deepEqual(await got(all2, 1), ['to all']);
    });

    it('a mandatory message no queue takes fails with MessageUndeliverable; a routed one is delivered, and without mandatory nothing fails', async () => {
      const q = name('mandatory');
      const { t, inbox } = await started([q]);
      await assert.rejects(
        t.publish('', name('nobody-listens'), Buffer.from('lost'), { mandatory: true }),
        (err: unknown) => err instanceof MessageUndeliverable && err.code === 'MESSAGE_UNDELIVERABLE',
      );
      await t.publish('', name('nobody-listens'), Buffer.from('dropped quietly'));
      await t.publish('', q, Buffer.from('taken'), { mandatory: true });
      const d = await inbox[q]!.next();
      assert.equal(text(d), 'taken');
      d.ack();
    });

    it('a requeued message comes back marked redelivered; a dropped or acknowledged one is gone', async () => {
      const q = name('settle');
      const { t, inbox } = await started([q]);
      await t.publish('', q, Buffer.from('m1'));
      const first = await inbox[q]!.next();
      assert.deepEqual([text(first), first.redelivered], ['m1', false]);
      first.requeue();
      const again = await inbox[q]!.next();
      assert.deepEqual([text(again), again.redelivered], ['m1', true]);
      again.drop();
      await t.publish('', q, Buffer.from('m2'));
      const second = await inbox[q]!.next();
      assert.equal(text(second), 'm2', 'the dropped message did not come back');
      second.ack();
      second.ack(); // settling twice is harmless
      await t.publish('', q, Buffer.from('m3'));
      assert.equal(text(await inbox[q]!.next()), 'm3', 'the acknowledged message did not come back');
    });

    it('a message its consumer never settled goes back to the queue when that transport closes, for the next consumer', async () => {
      const q = name('unsettled');
      const first = await started([q]);
      await first.t.publish('', q, Buffer.from('held'));
      const held = await first.inbox[q]!.next();
      assert.equal(text(held), 'held');
      await first.t.close();
      held.ack(); // on a closed transport: a no-op, the broker has it back
      const second = await started([q]);
      const d = await second.inbox[q]!.next();
      assert.deepEqual([text(d), d.redelivered], ['held', true]);
      d.ack();
    });

    it('publishing waits for the connection, and fails when it does not come in time', async () => {
      const q = name('later');
      const t = h.open();
      open.push(t);
      const inbox = new Inbox();
      t.onConnect((ch) => queue(ch, q));
      t.consume(q, inbox.handler);
      assert.equal(t.connected, false);
      await assert.rejects(t.publish('', q, Buffer.from('too soon'), {}, 50), /not reachable/);
      const sent = t.publish('', q, Buffer.from('once connected'), {}, 10_000);
      await t.start();
      await sent;
      const d = await inbox.next();
      assert.equal(text(d), 'once connected');
      d.ack();
    });
  });
}
