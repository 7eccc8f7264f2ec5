import { strict as assert } from 'node:assert';
import { decisionHost, movePrepResize } from '../../../tools/cli/commands/server-move.js';
import type { ServerView } from '../../../tools/cli/commands/server-lookup.js';

const view = (migration: unknown): ServerView =>
  ({
    uuid: '6f1c2b9e-1d2c-4a7b-9b1e-0c5d3f2a8e41',
    name: 'web',
    host: 'n1',
    project_id: 'p1',
    image: 'img',
    flavor: { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, name: 'small', extra_specs: {} },
    vm_state: 'active',
    task_state: null,
    migration,
  }) as unknown as ServerView;

describe('CLI moves between nodes: where the messages go', () => {
  it("sends confirm_resize to the move's source and revert_resize to its destination, as nova-api does", () => {
    const moved = view({ uuid: 'm', status: 'finished', source_compute: 'n1', dest_compute: 'n2' });
    assert.equal(decisionHost(moved, 'n2', 'confirm_resize'), 'n1');
    assert.equal(decisionHost(moved, 'n2', 'revert_resize'), 'n2');
  });

  it('sends both to the node that has the instance when the move names no ends (a node before 1.1, or one host)', () => {
    const old = view({ uuid: 'm', status: 'finished' });
    assert.equal(decisionHost(old, 'n1', 'confirm_resize'), 'n1');
    assert.equal(decisionHost(old, 'n1', 'revert_resize'), 'n1');
  });

  it("builds the conductor's prep_resize for the destination: a Migration from the instance's node to it", () => {
    const msg = movePrepResize({ view: view(null), host: 'n1' }, 'n2', { 'nova_object.data': { vcpus: 1 } }, 'migration');
    assert.equal(msg.method, 'prep_resize');
    const args = msg.args as { node: string; migration: { 'nova_object.data': Record<string, unknown> }; instance: { 'nova_object.data': { host: string } } };
    assert.equal(args.node, 'n2');
    assert.equal(args.instance['nova_object.data'].host, 'n1');
    const m = args.migration['nova_object.data'];
    assert.deepEqual([m.source_compute, m.dest_compute, m.migration_type, m.status], ['n1', 'n2', 'migration', 'pre-migrating']);
    assert.equal(msg._context_project_id, 'p1');
  });
});
