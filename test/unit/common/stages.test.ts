import { strict as assert } from 'node:assert';
import { reportStage, StageRecorder, timeStage } from '../../../common/stages.js';
import { stageRows } from '../../../tools/bench/lib/stages.js';

describe('stage timings', () => {
  it('publishes each timed stage, failed ones marked, to a recorder in the same process', async () => {
    const rec = new StageRecorder();
    try {
      assert.equal(await timeStage('shelve', 'stop', 'u1', async () => 7), 7);
      await assert.rejects(
        timeStage('shelve', 'snapshot', 'u1', async () => {
          throw new Error('boom');
        }),
        /boom/,
      );
      await timeStage('unshelve', 'create', 'u2', async () => undefined);
      const mine = rec.take('u1');
      assert.deepEqual(
        mine.map((t) => [t.op, t.stage, t.ok]),
        [
          ['shelve', 'stop', true],
          ['shelve', 'snapshot', false],
        ],
      );
      assert.ok(mine.every((t) => t.ms >= 0));
      assert.equal(rec.take('u1').length, 0);
      assert.equal(rec.take('u2').length, 1);
    } finally {
      rec.close();
    }
  });

  it('publishes nothing to a closed recorder', () => {
    const rec = new StageRecorder();
    rec.close();
    reportStage({ op: 'o', stage: 's', id: 'x', ms: 1, ok: true });
    assert.equal(rec.timings.length, 0);
  });

  it('summarises each stage over the rounds, a stage run twice in a round as its sum', () => {
    const t = (stage: string, ms: number) => ({ op: 'shelve', stage, id: 'u', ms, ok: true });
    const rows = stageRows([[t('stop', 10), t('commit', 100), t('commit', 50)], [t('stop', 30), t('commit', 200)], [t('stop', 20)]]);
    assert.deepEqual(
      rows.map((r) => [r.stage, r.n, r['median ms']]),
      [
        ['shelve.stop', 3, 20],
        ['shelve.commit', 2, 150],
      ],
    );
  });
});
