import { strict as assert } from 'node:assert';
import { Writable } from 'node:stream';
import { createLogger } from '../../../common/log.js';
import { BUILD_STAGES_MSG, BuildStages, type BuildTimeline } from '../../../driver/compute/build-stages.js';

describe('BuildStages: one logged timeline per build', () => {
  let lines: BuildTimeline[];
  let now: number;
  let stages: BuildStages;
  beforeEach(() => {
    lines = [];
    now = 1_000;
    const sink = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        for (const l of chunk.toString().split('\n').filter(Boolean)) {
          const rec = JSON.parse(l) as { msg: string; build_stages: BuildTimeline };
          if (rec.msg === BUILD_STAGES_MSG) lines.push(rec.build_stages);
        }
        done();
      },
    });
    stages = new BuildStages(createLogger('test', { destination: sink }), () => now);
  });

  it('marks stages in ms after the RPC, the last end of a stage counting, and logs the timeline once when the build ends', async () => {
    await stages.timed('u1', async () => {
      now = 1_050;
      stages.mark('u1', 'claimed');
      now = 1_200;
      stages.mark('u1', 'vif_plugged');
      now = 1_300;
      stages.mark('u1', 'vif_plugged');
      stages.mark('u1', 'active');
      stages.end('u1', 'active');
    });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(lines, [
      { instance: 'u1', outcome: 'active', started_at: 1_000, stages: { rpc_received: 0, claimed: 50, vif_plugged: 300, active: 300 } },
    ]);
    assert.equal(stages.size, 0);
  });

  it('a build that returns without ending is logged as abandoned, also when it throws; marks of builds not begun are ignored', async () => {
    stages.mark('nobody', 'claimed');
    await stages.timed('u2', async () => undefined);
    await assert.rejects(
      stages.timed('u3', async () => {
        throw new Error('boom');
      }),
      /boom/,
    );
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      lines.map((l) => [l.instance, l.outcome]),
      [
        ['u2', 'abandoned'],
        ['u3', 'abandoned'],
      ],
    );
    assert.equal(stages.size, 0);
  });
});
