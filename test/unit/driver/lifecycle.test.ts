import { strict as assert } from 'node:assert';
import { silentLogger } from '../../../common/log.js';
import type { InstanceRow } from '../../../driver/db/models.js';
import { Lifecycle, type LifecycleSinks } from '../../../driver/compute/lifecycle.js';
import { DRIFT, driftRule, REMOVALS, TRANSITIONS } from '../../../driver/compute/states.js';
import type { PayloadInput } from '../../../driver/notify/payload.js';
import { agentError } from '../../../agent/client/errors.js';

/** The authority's guard refusing a save, as a plane recognises it. */
class Refusal extends Error {}

/** One line per sink call, in the order the lifecycle made them. */
const show = (changes: Record<string, unknown>) =>
  Object.entries(changes)
    .map(([k, v]) => `${k}=${v instanceof Date ? 'date' : String(v)}`)
    .join(',');

describe('instance lifecycle (every sink, in order)', () => {
  let journal: string[];
  let notified: Array<{ event: string; phase: string | null; input: PayloadInput }>;
  let life: Lifecycle;
  const ctx = { request_id: 'req-1', user_id: 'u', project_id: 'p' };
  const rowOf = (fields: Partial<InstanceRow>) => ({ uuid: 'i-1', vm_state: 'active', task_state: null, power_state: 1, ...fields }) as unknown as InstanceRow;

  beforeEach(() => {
    journal = [];
    notified = [];
    const sinks: LifecycleSinks = {
      store: {
        update: async (row, changes) => {
          Object.assign(row, changes);
          journal.push(`store.update ${show(changes)}`);
          return true;
        },
        addFault: async (_uuid, code, _message, details) => {
          journal.push(`store.fault ${code} ${details}`);
        },
        startAction: async (_uuid, action) => {
          journal.push(`action.start ${action}`);
          return { action } as never;
        },
        finishAction: async (_action, result) => {
          journal.push(`action.finish ${result}`);
        },
      },
      plane: {
        saveInstance: async (_ctx, _uuid, changes, expected) => {
          journal.push(`plane.save ${show(changes as Record<string, unknown>)} guard=${String(expected)}`);
        },
        addFault: async (_ctx, _uuid, fault) => {
          journal.push(`plane.fault ${fault.code} ${fault.exception}`);
        },
        instanceDeleted: async () => {
          journal.push('plane.deleted');
        },
        refused: (err) => err instanceof Refusal,
      },
      notifier: {
        instance: async (_ctx, event, phase, input) => {
          journal.push(`notify ${event}${phase ? `.${phase}` : ''}`);
          notified.push({ event, phase, input });
        },
      },
      log: silentLogger(),
    };
    life = new Lifecycle(sinks);
  });

  it('an action that succeeds: action, task, start; then the authority under the task, the record, Success, end', async () => {
    const run = await life.begin(ctx, rowOf({}), 'stop');
    await life.succeed(run);
    assert.deepEqual(journal, [
      'action.start stop',
      'store.update task_state=powering-off',
      'notify power_off.start',
      'plane.save vm_state=stopped,power_state=4,task_state=null guard=powering-off',
      'store.update vm_state=stopped,power_state=4,task_state=null',
      'action.finish Success',
      'notify power_off.end',
    ]);
    assert.equal(notified[0]!.input.requestId, 'req-1');
  });

  it('the fault variant: fault and task cleared on the record, Error, both mirrored, then the .error notification with the fault', async () => {
    const run = await life.begin(ctx, rowOf({}), 'pause');
    journal.length = 0;
    const fault = await life.fail(run, agentError('RUNTIME_UNAVAILABLE', 'docker is down'));
    assert.deepEqual(fault, { exception: 'HypervisorUnavailable', message: 'docker is down', code: 503 });
    assert.deepEqual(journal, [
      'store.fault 503 HypervisorUnavailable',
      'store.update task_state=null',
      'action.finish Error',
      'plane.fault 503 HypervisorUnavailable',
      'plane.save task_state=null guard=undefined',
      'notify pause.error',
    ]);
    assert.equal(notified.at(-1)!.input.fault?.exception, 'HypervisorUnavailable');
  });

  it('a failure that is the authority refusing is not mirrored back to it', async () => {
    const run = await life.begin(ctx, rowOf({}), 'start');
    journal.length = 0;
    await life.fail(run, new Refusal('UnexpectedTaskStateError'));
    assert.deepEqual(journal, ['store.fault 500 NovaException', 'store.update task_state=null', 'action.finish Error', 'notify power_on.error']);
  });

  it('a build that fails before it began opens its action first and lands in error with no power', async () => {
    const row = rowOf({ vm_state: 'building', task_state: 'spawning', power_state: 0 });
    await life.fail({ ctx, row, name: 'create', action: null }, agentError('IMAGE_NOT_FOUND', 'no such image'));
    assert.deepEqual(journal, [
      'action.start create',
      'store.fault 404 ImageNotFound',
      'store.update vm_state=error,task_state=null,power_state=0',
      'action.finish Error',
      'plane.fault 404 ImageNotFound',
      'plane.save vm_state=error,task_state=null,power_state=0 guard=undefined',
      'notify create.error',
    ]);
  });

  it('a build: spawning is already on the record; success saves the launch with the authority, the address only locally', async () => {
    const run = await life.begin(ctx, rowOf({ vm_state: 'building', task_state: 'spawning', power_state: 0 }), 'create');
    await life.succeed(run, { launched_at: new Date() }, { ip_address: '10.0.0.5' });
    assert.deepEqual(journal, [
      'action.start create',
      'notify create.start',
      'plane.save vm_state=active,power_state=1,task_state=null,launched_at=date guard=spawning',
      'store.update vm_state=active,power_state=1,task_state=null,launched_at=date,ip_address=10.0.0.5',
      'action.finish Success',
      'notify create.end',
    ]);
  });

  it('a delete is recorded locally before the authority closes its record, and its failure is not announced', async () => {
    const ok = await life.begin(ctx, rowOf({}), 'delete');
    await life.succeed(ok, { terminated_at: new Date() }, { deleted: true });
    assert.deepEqual(journal.slice(3), [
      'store.update vm_state=deleted,power_state=0,task_state=null,terminated_at=date,deleted=true',
      'plane.deleted',
      'action.finish Success',
      'notify delete.end',
    ]);
    journal.length = 0;
    const bad = await life.begin(ctx, rowOf({}), 'delete');
    await life.fail(bad, new Error('agent gone'));
    assert.deepEqual(journal.slice(3), [
      'store.fault 500 NovaException',
      'store.update vm_state=error,task_state=null',
      'action.finish Error',
      'plane.fault 500 NovaException',
      'plane.save vm_state=error,task_state=null guard=undefined',
    ]);
    assert.equal(TRANSITIONS.delete.errorEvent, false);
  });

  it('progress within an action: the authority first, guarded by the task it had, then the record', async () => {
    const run = await life.begin(ctx, rowOf({}), 'createImage', { snapshotImageId: 'img-9' });
    journal.length = 0;
    await life.progress(run, 'image_uploading');
    await life.succeed(run);
    assert.deepEqual(journal, [
      'plane.save task_state=image_uploading guard=image_snapshot',
      'store.update task_state=image_uploading',
      'plane.save task_state=null guard=image_uploading',
      'store.update task_state=null',
      'action.finish Success',
      'notify snapshot.end',
    ]);
    assert.ok(notified.every((n) => n.input.snapshotImageId === 'img-9'));
  });

  describe('drift rows', () => {
    it("a vanished container: the row's fault, error on the record, mirrored, instance.update", async () => {
      const row = rowOf({ vm_state: 'active', power_state: 1 });
      assert.equal(await life.drift(row, null), true);
      assert.deepEqual(journal, [
        'store.fault 404 InstanceNotFound',
        'store.update vm_state=error,power_state=0',
        'plane.save vm_state=error,power_state=0 guard=undefined',
        'notify update',
      ]);
      assert.deepEqual(notified[0]!.input.stateUpdate, { old_state: 'active', state: 'error', old_task_state: null, new_task_state: null });
    });

    it('a stopped container of an active instance stops it, a running one of a stopped instance starts it; no fault', async () => {
      await life.drift(rowOf({ vm_state: 'active', power_state: 1 }), { power_state: 'stopped' } as never);
      await life.drift(rowOf({ vm_state: 'stopped', power_state: 4 }), { power_state: 'running' } as never);
      assert.deepEqual(
        journal.filter((l) => l.startsWith('store')),
        ['store.update vm_state=stopped,power_state=4', 'store.update vm_state=active,power_state=1'],
      );
    });

    it('a record that agrees is left alone; an unmatched state keeps its vm_state but takes the power state', async () => {
      assert.equal(await life.drift(rowOf({ vm_state: 'paused', power_state: 3 }), { power_state: 'paused' } as never), false);
      assert.equal(journal.length, 0);
      assert.equal(driftRule('stopped', 6), undefined);
      await life.drift(rowOf({ vm_state: 'stopped', power_state: 4 }), { power_state: 'crashed' } as never);
      assert.deepEqual(
        journal.filter((l) => l.startsWith('store')),
        ['store.update vm_state=stopped,power_state=6'],
      );
    });

    it('the first matching row decides', () => {
      assert.equal(driftRule('error', 0), DRIFT[0]);
      assert.equal(driftRule('suspended', 6)?.to, 'stopped');
    });
  });

  describe('removal rows (the authority removed the server already)', () => {
    it('a refused claim: deleted on the record only, no termination time; nothing to the plane, no action, no notification', async () => {
      const row = rowOf({ vm_state: 'building', task_state: 'spawning', power_state: 0 });
      await life.removed(row, 'claim_refused', { reason: 'guard' });
      assert.deepEqual(journal, ['store.update vm_state=deleted,task_state=null,deleted=true,deleted_at=date']);
      assert.equal(notified.length, 0);
      assert.equal(row.vm_state, 'deleted');
    });

    it('a server deleted elsewhere: deleted with no power and its termination time, on the record only', async () => {
      const row = rowOf({ vm_state: 'active', power_state: 1 });
      await life.removed(row, 'deleted_elsewhere');
      assert.deepEqual(journal, ['store.update vm_state=deleted,task_state=null,power_state=0,deleted=true,deleted_at=date,terminated_at=date']);
      assert.equal(notified.length, 0);
    });

    it('each row lands in deleted with no task', () => {
      for (const [name, r] of Object.entries(REMOVALS)) assert.deepEqual([r.to.vm_state, r.to.task_state], ['deleted', null], name);
    });
  });
});
