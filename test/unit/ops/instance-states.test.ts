import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TRANSITIONS } from '../../../driver/compute/states.js';
import { ROOT } from '../../support/fixtures.js';

/** docs/instance-states.md's table says what driver/compute/states.ts does. */
describe('instance state documentation', () => {
  it('has one row per action with its start states, task state, end state and failure state', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'instance-states.md'), 'utf8');
    const rows = new Map(
      [...doc.matchAll(/^\| `([a-zA-Z_]+)` \| ([^|]+) \| `([^`]+)` \| ([^|]+) \| ([^|]+) \|$/gm)].map((m) => [m[1]!, m.slice(2).map((c) => c.trim())]),
    );
    assert.deepEqual([...rows.keys()].sort(), Object.keys(TRANSITIONS).sort());
    for (const [action, t] of Object.entries(TRANSITIONS)) {
      const [from, task, to, onError] = rows.get(action)!;
      assert.equal(from, t.from === 'any' ? 'any' : t.from.join(', '), action);
      assert.equal(task, t.task, action);
      assert.equal(to, t.to === 'unchanged' ? 'unchanged' : t.to.vm_state, action);
      assert.equal(onError, t.onError?.vm_state ?? 'unchanged (task cleared)', action);
    }
  });
});
