import { strict as assert } from 'node:assert';
import { FIRST_POLL_MS, pollWaits, runSnapshot } from '../../../driver/compute/snapshots.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';

const UUID = '6f1c2b3a-0000-4000-8000-000000000001';
const IMAGE = '6f1c2b3a-0000-4000-8000-0000000000aa';

describe('runSnapshot polling', () => {
  it('waits FIRST_POLL_MS first and doubles each wait up to the longest', () => {
    const waits = pollWaits(500);
    const seen = Array.from({ length: 8 }, () => waits.next().value);
    assert.deepEqual(seen, [25, 50, 100, 200, 400, 500, 500, 500]);
    assert.equal(FIRST_POLL_MS, 25);
  });

  it('never waits longer than a shorter longest wait', () => {
    const waits = pollWaits(10);
    assert.deepEqual([waits.next().value, waits.next().value], [10, 10]);
  });

  it('polls a snapshot that ends after four polls with the backed-off waits, and reports image_uploading once', async () => {
    const agent = new FakeAgentClient();
    await agent.createInstance(UUID, { image_id: 'img', project_id: 'p', hostname: 'h', flavor: { vcpus: 1, memory_mb: 64 } } as never);
    agent.snapshotPolls = 4;
    const slept: number[] = [];
    const tasks: string[] = [];
    const task = await runSnapshot(
      agent,
      UUID,
      IMAGE,
      async (t) => {
        tasks.push(t);
      },
      { sleep: async (ms) => void slept.push(ms) },
    );
    assert.equal(task.state, 'active');
    assert.deepEqual(slept, [25, 50, 100, 200]);
    assert.deepEqual(tasks, ['image_uploading']);
  });

  it('polls at most every 200 ms by default', async () => {
    const agent = new FakeAgentClient();
    await agent.createInstance(UUID, { image_id: 'img', project_id: 'p', hostname: 'h', flavor: { vcpus: 1, memory_mb: 64 } } as never);
    agent.snapshotPolls = 7;
    const slept: number[] = [];
    await runSnapshot(agent, UUID, IMAGE, async () => undefined, { sleep: async (ms) => void slept.push(ms) });
    assert.deepEqual(slept, [25, 50, 100, 200, 200, 200, 200]);
  });
});
