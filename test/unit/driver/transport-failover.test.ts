import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { ChannelModel } from 'amqplib';
import sinon from 'sinon';
import { silentLogger } from '../../../common/log.js';
import type { BrokerHost } from '../../../common/transport-url.js';
import { rabbitDefaults } from '../../../driver/rpc/broker-connect.js';
import { AmqpTransport } from '../../../driver/rpc/amqp-transport.js';
import { MessageUndeliverable } from '../../../driver/rpc/transport.js';

/** A broker node as the transport sees it: up (accepts connections) or down (refuses them). */
class FakeNode {
  up = true;
  connections: FakeConnection[] = [];
  constructor(readonly name: string) {}
}

class FakeChannel extends EventEmitter {
  declared: string[] = [];
  consumed: string[] = [];
  published: { routingKey: string; body: string; cb: (err: unknown) => void }[] = [];
  closed = false;
  /** Answer confirms at once (true) or leave them pending. */
  autoConfirm = true;
  /** Routing keys with no queue: mandatory messages come back. */
  unroutable = new Set<string>();
  prefetch = async () => undefined;
  assertExchange = async () => undefined;
  assertQueue = async (q: string) => {
    this.declared.push(q);
  };
  bindQueue = async () => undefined;
  consume = async (q: string) => {
    this.consumed.push(q);
  };
  publish(_ex: string, routingKey: string, body: Buffer, opts: { mandatory?: boolean }, cb: (err: unknown) => void): boolean {
    if (this.closed) throw new Error('Channel closed');
    this.published.push({ routingKey, body: body.toString(), cb });
    if (opts.mandatory && this.unroutable.has(routingKey)) this.emit('return', { fields: { routingKey }, content: Buffer.from(body) });
    if (this.autoConfirm) queueMicrotask(() => cb(null));
    return true;
  }
  die(): void {
    this.closed = true;
    for (const p of this.published) p.cb(new Error('channel closed'));
    this.emit('close');
  }
}

class FakeConnection extends EventEmitter {
  channel = new FakeChannel();
  createConfirmChannel = async () => this.channel;
  private closed = false;
  /** As amqplib: closing the connection emits 'close' (once). */
  close = async () => {
    if (this.closed) return;
    this.closed = true;
    this.emit('close');
  };
  /** The node died: the socket closes. */
  drop(): void {
    this.channel.die();
    void this.close();
  }
}

function cluster(...names: string[]) {
  const nodes = new Map(names.map((n) => [n, new FakeNode(n)]));
  const attempts: string[] = [];
  const open = async (_b: unknown, host: BrokerHost): Promise<ChannelModel> => {
    const node = nodes.get(host.hostname)!;
    attempts.push(host.hostname);
    if (!node.up) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const c = new FakeConnection();
    node.connections.push(c);
    return c as unknown as ChannelModel;
  };
  return { nodes, attempts, open, last: (n: string) => nodes.get(n)!.connections.at(-1)! };
}

describe('broker transport: failover between the hosts of transport_url', () => {
  let clock: sinon.SinonFakeTimers;
  beforeEach(() => {
    clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  });
  afterEach(() => clock.restore());

  const transport = (c: ReturnType<typeof cluster>, url = 'rabbit://u:p@a:5672,u:p@b:5672/') =>
    new AmqpTransport({ url, rabbit: rabbitDefaults(), prefetch: 0, log: silentLogger(), open: c.open, random: () => 0.999 });

  it('starts on the first host that answers, trying the next one at once', async () => {
    const c = cluster('a', 'b');
    c.nodes.get('a')!.up = false;
    const t = transport(c);
    const started = t.start();
    await clock.tickAsync(0);
    await started;
    assert.deepEqual(c.attempts, ['a', 'b']);
    assert.equal(t.connectedHost, 'b:5672');
    await t.close();
  });

  it('on loss: waits kombu_reconnect_delay, retries the lost node, moves on, and declares and consumes again there', async () => {
    const c = cluster('a', 'b');
    const t = transport(c);
    t.onConnect(async (ch) => ch.assertQueue('compute.h', { durable: false, autoDelete: false }));
    t.consume('compute.h', () => undefined);
    const started = t.start();
    await clock.tickAsync(0);
    await started;
    assert.equal(t.connectedHost, 'a:5672');
    const reconnected = new Promise<string>((resolve) => t.once('connected', resolve));
    c.nodes.get('a')!.up = false;
    c.last('a').drop();
    assert.equal(t.connected, false);
    await clock.tickAsync(999);
    assert.deepEqual(c.attempts, ['a']);
    await clock.tickAsync(1); // kombu_reconnect_delay: a again, refused
    assert.deepEqual(c.attempts, ['a', 'a']);
    await clock.tickAsync(1000); // + kombu_reconnect_delay after the failure: b
    assert.equal(await reconnected, 'b:5672');
    assert.deepEqual(c.attempts, ['a', 'a', 'b']);
    assert.deepEqual(c.last('b').channel.declared, ['compute.h']);
    assert.deepEqual(c.last('b').channel.consumed, ['compute.h']);
    await t.close();
  });

  it('a publish whose confirm was lost with the node is sent again on the next node; one confirmed is not', async () => {
    const c = cluster('a', 'b');
    const t = transport(c);
    const started = t.start();
    await clock.tickAsync(0);
    await started;
    await t.publish('nova', 'compute.h', Buffer.from('confirmed'));
    c.last('a').channel.autoConfirm = false;
    const inFlight = t.publish('nova', 'compute.h', Buffer.from('in flight'));
    await clock.tickAsync(0);
    c.nodes.get('a')!.up = false;
    c.last('a').drop();
    await clock.tickAsync(2100);
    await inFlight;
    assert.deepEqual(
      c.last('a').channel.published.map((p) => p.body),
      ['confirmed', 'in flight'],
    );
    assert.deepEqual(
      c.last('b').channel.published.map((p) => p.body),
      ['in flight'],
    );
    await t.close();
  });

  it('a publish gives up after its wait while every node is down', async () => {
    const c = cluster('a', 'b');
    c.nodes.get('a')!.up = false;
    c.nodes.get('b')!.up = false;
    const t = transport(c);
    void t.start();
    const p = t.publish('nova', 'compute.h', Buffer.from('x'), {}, 5000);
    const failed = assert.rejects(p, /broker not reachable within/);
    await clock.tickAsync(5000);
    await failed;
    // a, b at 0 s; a, b at 1 s; a, b at 4 s; the next round would be at 9 s: pauses only after whole cycles
    assert.deepEqual(c.attempts, ['a', 'b', 'a', 'b', 'a', 'b']);
    await t.close();
  });

  it('a publish the broker refuses (the channel closed with an error) or that cannot be encoded is not sent again', async () => {
    const c = cluster('a');
    const t = transport(c, 'rabbit://a/');
    const started = t.start();
    await clock.tickAsync(0);
    await started;
    const ch = c.last('a').channel;
    ch.autoConfirm = false;
    const refused = t.publish('missing-exchange', 'k', Buffer.from('x'));
    await clock.tickAsync(0);
    ch.emit('error', new Error('Channel closed by server: 404 (NOT-FOUND) no exchange'));
    ch.die();
    await assert.rejects(refused, /404/);
    await clock.tickAsync(2000);
    const again = c.last('a').channel;
    again.publish = () => {
      throw new TypeError("Field 'routingKey' is the wrong type; must be a string (up to 255 chars)");
    };
    await assert.rejects(t.publish('', 'q'.repeat(300), Buffer.from('x')), /routingKey/);
    await t.close();
  });

  it('a mandatory message the broker returns raises MessageUndeliverable', async () => {
    const c = cluster('a');
    const t = transport(c, 'rabbit://a/');
    const started = t.start();
    await clock.tickAsync(0);
    await started;
    c.last('a').channel.unroutable.add('reply_gone');
    await assert.rejects(t.publish('', 'reply_gone', Buffer.from('r'), { mandatory: true }), MessageUndeliverable);
    await t.publish('', 'reply_here', Buffer.from('r'), { mandatory: true });
    await t.close();
  });
});
