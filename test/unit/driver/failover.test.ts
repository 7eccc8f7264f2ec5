import assert from 'node:assert/strict';
import { FailoverPlan, type FailoverOptions } from '../../../driver/rpc/failover.js';

const H = (name: string) => ({ hostname: name, port: 5672, username: 'guest', password: 'guest' });
const OSLO: FailoverOptions = { strategy: 'round-robin', retryIntervalSeconds: 1, retryBackoffSeconds: 2, intervalMaxSeconds: 30, reconnectDelaySeconds: 1 };
/** A random() that keeps Fisher-Yates from swapping anything: the list stays in URL order. */
const keepOrder = () => 0.999;

describe('broker failover plan (oslo.messaging over kombu)', () => {
  it('shuffles several hosts once at start, one host never', () => {
    let calls = 0;
    const seq = [0, 0];
    const plan = new FailoverPlan([H('a'), H('b'), H('c')], { ...OSLO, random: () => seq[calls++] ?? 0 });
    assert.deepEqual(
      plan.order.map((h) => h.hostname),
      ['b', 'c', 'a'],
    );
    assert.equal(calls, 2);
    const one = new FailoverPlan([H('a')], {
      ...OSLO,
      random: () => {
        throw new Error('not called');
      },
    });
    assert.equal(one.current.hostname, 'a');
  });

  it('round-robin: the next host at once, a pause only after a whole cycle, growing 1, 3, 5 ... 31 s then staying', () => {
    const plan = new FailoverPlan([H('a'), H('b')], { ...OSLO, random: keepOrder });
    const seen: [string, number][] = [];
    for (let i = 0; i < 40; i++) {
      const host = plan.current.hostname;
      seen.push([host, plan.failed()]);
    }
    assert.deepEqual(seen.slice(0, 6), [
      ['a', 0],
      ['b', 1000],
      ['a', 0],
      ['b', 3000],
      ['a', 0],
      ['b', 5000],
    ]);
    // kombu's fxrange(1, 30 + 1, 2, repeatlast=True): ..., 29, 31, 31, ...
    const pauses = seen.filter(([, ms]) => ms > 0).map(([, ms]) => ms / 1000);
    assert.deepEqual(pauses.slice(13, 20), [27, 29, 31, 31, 31, 31, 31]);
  });

  it('a success starts the pauses over', () => {
    const plan = new FailoverPlan([H('a')], { ...OSLO, random: keepOrder });
    assert.deepEqual([plan.failed(), plan.failed(), plan.failed()], [1000, 3000, 5000]);
    plan.connected();
    assert.equal(plan.failed(), 1000);
  });

  it('after a loss: kombu_reconnect_delay, the lost host again, then the next, each failure adding the delay', () => {
    const plan = new FailoverPlan([H('a'), H('b'), H('c')], { ...OSLO, random: keepOrder });
    plan.connected();
    assert.equal(plan.current.hostname, 'a');
    assert.equal(plan.lost(), 1000);
    assert.equal(plan.current.hostname, 'a');
    assert.equal(plan.failed(), 1000); // a refused: 0 (cycle not complete) + reconnect delay
    assert.equal(plan.current.hostname, 'b');
    assert.equal(plan.failed(), 1000);
    assert.equal(plan.current.hostname, 'c');
    assert.equal(plan.failed(), 2000); // a whole cycle: 1 s + reconnect delay
    assert.equal(plan.current.hostname, 'a');
    plan.connected();
    assert.equal(plan.failed(), 0); // a fresh start is not a recovery
  });

  it('shuffle: each next host drawn at random (the same one possible)', () => {
    const draws = [0.999, 0.999, 0.0, 0.5, 0.5];
    let i = 0;
    const plan = new FailoverPlan([H('a'), H('b'), H('c')], { ...OSLO, strategy: 'shuffle', random: () => draws[i++] ?? 0 });
    assert.deepEqual(
      plan.order.map((h) => h.hostname),
      ['a', 'b', 'c'],
    );
    const next: string[] = [];
    for (let k = 0; k < 3; k++) {
      plan.failed();
      next.push(plan.current.hostname);
    }
    assert.deepEqual(next, ['a', 'b', 'b']);
  });

  it('rabbit_retry_interval 0 starts at 1 s, as oslo passes `interval_start or 1`', () => {
    const plan = new FailoverPlan([H('a')], { ...OSLO, retryIntervalSeconds: 0, retryBackoffSeconds: 0 });
    assert.deepEqual([plan.failed(), plan.failed()], [1000, 1000]);
  });
});
