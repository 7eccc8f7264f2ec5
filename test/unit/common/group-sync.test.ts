import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataTypes, type Sequelize } from 'sequelize';
import { durabilityBarrier, GroupSync, openDatabase, tuneSqlite } from '../../../common/db.js';

/** A sync whose runs the test finishes by hand. */
function manualSync(): { sync: () => Promise<void>; runs: Array<{ finish(err?: Error): void }> } {
  const runs: Array<{ finish(err?: Error): void }> = [];
  const sync = (): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      runs.push({ finish: (err) => (err ? reject(err) : resolve()) });
    });
  return { sync, runs };
}

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('group commit: GroupSync and the SQLite durability barrier', () => {
  it('runs one sync for a lone caller', async () => {
    const { sync, runs } = manualSync();
    const g = new GroupSync(sync);
    const p = g.durable();
    assert.equal(runs.length, 1);
    runs[0]!.finish();
    await p;
  });

  it('makes every caller arriving during a sync wait for one shared next sync', async () => {
    const { sync, runs } = manualSync();
    const g = new GroupSync(sync);
    let firstDone = false;
    const first = g.durable().then(() => {
      firstDone = true;
    });
    // These may have committed after the first sync began: the first run does not cover them.
    const later = [g.durable(), g.durable(), g.durable()];
    let laterDone = 0;
    for (const p of later)
      void p.then(() => {
        laterDone++;
      });
    assert.equal(runs.length, 1);
    runs[0]!.finish();
    await first;
    await settle();
    assert.equal(firstDone, true);
    assert.equal(laterDone, 0, 'callers that arrived during the first sync are not released by it');
    assert.equal(runs.length, 2, 'one more sync for all of them');
    runs[1]!.finish();
    await Promise.all(later);
    assert.equal(runs.length, 2);
  });

  it('lets a caller the running sync covers wait for that sync, and have its own if it fails', async () => {
    const { sync, runs } = manualSync();
    let mark = 5;
    const g = new GroupSync(sync, () => mark);
    const first = g.durable(5);
    mark = 7;
    const covered = g.durable(4);
    const notCovered = g.durable(6);
    assert.equal(runs.length, 1);
    runs[0]!.finish();
    await Promise.all([first, covered]);
    await settle();
    assert.equal(runs.length, 2, 'the caller needing 6 gets the next sync');
    runs[1]!.finish();
    await notCovered;
    // The covering sync fails: the covered caller gets a sync of its own.
    const third = g.durable(7);
    const riding = g.durable(7);
    runs[2]!.finish(new Error('EIO'));
    await assert.rejects(third, /EIO/);
    await settle();
    assert.equal(runs.length, 4);
    runs[3]!.finish();
    await riding;
  });

  it('fails the callers of a failed sync, and the next caller syncs again', async () => {
    const { sync, runs } = manualSync();
    const g = new GroupSync(sync);
    const failing = g.durable();
    runs[0]!.finish(new Error('EIO'));
    await assert.rejects(failing, /EIO/);
    const again = g.durable();
    assert.equal(runs.length, 2);
    runs[1]!.finish();
    await again;
  });

  it('a sync that failed still lets the callers waiting behind it have their own sync', async () => {
    const { sync, runs } = manualSync();
    const g = new GroupSync(sync);
    const first = g.durable();
    const second = g.durable();
    runs[0]!.finish(new Error('EIO'));
    await assert.rejects(first, /EIO/);
    await settle();
    assert.equal(runs.length, 2);
    runs[1]!.finish();
    await second;
  });

  describe('on a SQLite file tuned for group commit', () => {
    let dir: string;
    let db: Sequelize;
    beforeEach(async () => {
      dir = mkdtempSync(join(tmpdir(), 'berth-group-sync-'));
      db = openDatabase(`sqlite:///${join(dir, 'state.sqlite')}`);
      await tuneSqlite(db, { groupCommit: true });
    });
    afterEach(async () => {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('commits without syncing (synchronous=NORMAL) in WAL mode, and the barrier syncs the -wal file', async () => {
      const [[mode]] = (await db.query('PRAGMA journal_mode')) as [Array<{ journal_mode: string }>, unknown];
      const [[sync]] = (await db.query('PRAGMA synchronous')) as [Array<{ synchronous: number }>, unknown];
      assert.equal(mode?.journal_mode, 'wal');
      assert.equal(sync?.synchronous, 1, 'NORMAL');
      const Row = db.define('row', { v: DataTypes.INTEGER });
      await Row.sync();
      await Promise.all(Array.from({ length: 20 }, (_, i) => Row.create({ v: i })));
      assert.ok(existsSync(join(dir, 'state.sqlite-wal')));
      const barrier = durabilityBarrier(db);
      await Promise.all([barrier(), barrier(), barrier()]);
      assert.equal(await Row.count(), 20);
    });

    it('syncs only when something was written since the last sync, and not when the -wal file is as last synced', async () => {
      const Row = db.define('row', { v: DataTypes.INTEGER });
      await Row.sync();
      const outcomes: string[] = [];
      const barrier = durabilityBarrier(db, { onSync: (o) => outcomes.push(o) });
      await Row.create({ v: 1 });
      await barrier();
      assert.deepEqual(outcomes, ['synced']);
      // Nothing written since: no sync is even attempted.
      await barrier();
      await Row.findAll();
      await barrier();
      assert.deepEqual(outcomes, ['synced'], 'reads and repeated barriers cost no sync');
      // A write query that changes nothing appends nothing. Right after a write the file's mtime
      // cannot vouch for that (a commit in the same clock tick leaves it as it was): synced.
      await Row.update({ v: 2 }, { where: { v: 999 } });
      await barrier();
      assert.deepEqual(outcomes, ['synced', 'synced']);
      // Long after the last write, the same no-op is looked at and not flushed.
      await new Promise((r) => setTimeout(r, 120));
      await Row.update({ v: 2 }, { where: { v: 999 } });
      await barrier();
      await Row.update({ v: 2 }, { where: { v: 999 } });
      await barrier();
      assert.deepEqual(outcomes.slice(2), ['synced', 'unchanged']);
      await Row.create({ v: 3 });
      await Promise.all([barrier(), barrier()]);
      assert.deepEqual(outcomes.slice(4), ['synced'], 'one sync for both callers: the first one covers the second');
    });

    it('keeps full syncs at commit without group commit', async () => {
      const plain = openDatabase(`sqlite:///${join(dir, 'plain.sqlite')}`);
      try {
        await tuneSqlite(plain);
        const [[sync]] = (await plain.query('PRAGMA synchronous')) as [Array<{ synchronous: number }>, unknown];
        assert.equal(sync?.synchronous, 2, 'FULL');
      } finally {
        await plain.close();
      }
    });
  });

  it('does nothing for an in-memory database', async () => {
    const db = openDatabase('sqlite://');
    try {
      await durabilityBarrier(db)();
    } finally {
      await db.close();
    }
  });
});
