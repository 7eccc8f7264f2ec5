import assert from 'node:assert/strict';
import sinon from 'sinon';
import { backoffDelay, jitteredBackoff, UPPER_HALF_JITTER } from '../../../common/backoff.js';
import { KeyedMutex } from '../../../common/keyed-mutex.js';
import { Semaphore } from '../../../common/semaphore.js';
import { SingleFlight } from '../../../common/single-flight.js';
import { deferred } from '../../support/waits.js';

const tick = (ms = 5): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('common concurrency kit', () => {
  describe('KeyedMutex', () => {
    it('runs the operations on one key one at a time, in order, even when one fails', async () => {
      const m = new KeyedMutex();
      const log: string[] = [];
      const op =
        (name: string, fail = false) =>
        async (): Promise<string> => {
          log.push(`start ${name}`);
          await tick();
          log.push(`end ${name}`);
          if (fail) throw new Error(name);
          return name;
        };
      const results = await Promise.allSettled([m.run('a', op('1')), m.run('a', op('2', true)), m.run('a', op('3'))]);
      assert.deepEqual(log, ['start 1', 'end 1', 'start 2', 'end 2', 'start 3', 'end 3']);
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'rejected', 'fulfilled'],
      );
      assert.equal(m.size, 0, 'an idle key is forgotten');
    });

    it('lets different keys run together', async () => {
      const m = new KeyedMutex();
      const gate = deferred();
      const a = m.run('a', () => gate.promise);
      let bRan = false;
      await m.run('b', async () => {
        bRan = true;
      });
      assert.equal(bRan, true);
      gate.resolve();
      await a;
    });
  });

  describe('Semaphore', () => {
    it('runs at most `limit` tasks at once, the rest in FIFO order, and frees a slot on failure', async () => {
      const s = new Semaphore(2);
      const gates = [deferred(), deferred(), deferred()];
      const started: number[] = [];
      const runs = gates.map((g, i) =>
        s.run(async () => {
          started.push(i);
          await g.promise;
          if (i === 0) throw new Error('first fails');
        }),
      );
      await tick();
      assert.deepEqual(started, [0, 1]);
      assert.deepEqual([s.running, s.pending], [2, 1]);
      gates[0]!.resolve();
      await assert.rejects(runs[0]!, /first fails/);
      await tick();
      assert.deepEqual(started, [0, 1, 2]);
      gates[1]!.resolve();
      gates[2]!.resolve();
      await Promise.all(runs.slice(1));
      assert.deepEqual([s.running, s.pending], [0, 0]);
    });
  });

  describe('SingleFlight', () => {
    it('shares one running task per key, and starts afresh once it settled', async () => {
      const f = new SingleFlight<number>();
      let calls = 0;
      const gate = deferred<number>();
      const task = (): Promise<number> => {
        calls++;
        return gate.promise;
      };
      const [a, b] = [f.run('k', task), f.run('k', task)];
      assert.equal(f.get('k'), a);
      assert.deepEqual([...f.keys()], ['k']);
      gate.resolve(7);
      assert.deepEqual(await Promise.all([a, b]), [7, 7]);
      assert.equal(calls, 1);
      assert.equal(f.size, 0);
      assert.equal(await f.run('k', async () => 8), 8);
    });

    it('shares a failure with every waiter, then forgets it', async () => {
      const f = new SingleFlight<number>();
      const gate = deferred<number>();
      const runs = [f.run('k', () => gate.promise), f.run('k', () => Promise.resolve(1))];
      gate.reject(new Error('download broke'));
      for (const r of runs) await assert.rejects(r, /download broke/);
      assert.equal(f.get('k'), undefined);
    });

    it('turns a task that throws before returning a promise into a rejection', async () => {
      const f = new SingleFlight<number>();
      await assert.rejects(
        f.run('k', () => {
          throw new Error('sync');
        }),
        /sync/,
      );
      assert.equal(f.size, 0);
    });
  });

  describe('backoffDelay', () => {
    afterEach(() => sinon.restore());

    it('doubles from baseMs per attempt up to maxMs, without jitter by default', () => {
      assert.deepEqual(
        [0, 1, 2, 5, 6, 20].map((n) => backoffDelay(n, { baseMs: 1000, maxMs: 30_000 })),
        [1000, 2000, 4000, 30_000, 30_000, 30_000],
      );
    });

    it('spreads the delay over its jitter range', () => {
      const random = sinon.stub(Math, 'random');
      random.returns(0);
      assert.equal(backoffDelay(2, { baseMs: 500, maxMs: 10_000, jitter: [0.8, 1.2] }), 1600);
      random.returns(0.999999);
      assert.ok(Math.abs(backoffDelay(2, { baseMs: 500, maxMs: 10_000, jitter: [0.8, 1.2] }) - 2400) < 0.01);
      random.returns(0);
      assert.equal(backoffDelay(3, { baseMs: 100, maxMs: 5000, jitter: UPPER_HALF_JITTER }), 400);
      assert.equal(jitteredBackoff(100, 3, 5000), 400);
      random.returns(0.5);
      assert.equal(jitteredBackoff(100, 10, 5000), 3750);
    });
  });
});
