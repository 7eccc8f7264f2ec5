import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TRANSITIONS } from '../../../driver/compute/states.js';
import { ROOT } from '../../support/fixtures.js';

/** Where an action leaves the instance, as the table writes it. */
function toText(to: (typeof TRANSITIONS)[keyof typeof TRANSITIONS]['to']): string {
  if (typeof to === 'string') return to;
  return 'vm_state' in to ? to.vm_state : `unchanged (task ${to.task_state})`;
}

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
      assert.equal(task, String(t.task), action);
      assert.equal(to, toText(t.to), action);
      assert.equal(onError, t.onError?.vm_state ?? 'unchanged (task cleared)', action);
    }
  });
});
