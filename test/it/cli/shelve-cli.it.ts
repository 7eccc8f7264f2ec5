import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { containersOf, startStack, type Stack } from '../../../tools/lib/stack.js';
import { type CliResult, jsonOf, runBerth, stackCliEnv } from '../../support/berth-cli.js';

type Result = CliResult;
interface Shown {
  id: string;
  status: string;
  vm_state: string;
  task_state: string | null;
  system_metadata?: Record<string, string>;
  fault?: { exception: string } | null;
}

/** `berth server shelve` and `unshelve` as a user runs them (standalone mode), against a node started by the test. */
describe('berth server shelve and unshelve against a running node', function () {
  this.timeout(240_000);
  let stack: Stack;
  let env: NodeJS.ProcessEnv;
  let scratch: string;

  const berth = (...args: string[]): Promise<Result> => runBerth(args, env, { timeoutMs: 180_000 });
  const json = jsonOf;

  before(async () => {
    stack = await startStack({ overrides: { compute: { shelved_offload_time: -1 } } });
    scratch = mkdtempSync(join(tmpdir(), 'berth-cli-shelve-'));
    env = stackCliEnv(stack, scratch);
  });
  after(async () => {
    await stack?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('shelve --wait keeps the stopped container (shelved_offload_time -1); unshelve --wait starts it; shelve --offload --wait removes it; unshelve --wait boots the snapshot', async () => {
    const image = await stack.testImage();
    const created = json<Shown>(
      await berth('-f', 'json', 'server', 'create', '--image', image.id, '--flavor-vcpus', '1', '--flavor-ram', '64', '--name', 'shelvee', '--wait'),
    );
    stack.track(created.id);
    assert.equal(created.status, 'ACTIVE');

    let shown = json<Shown>(await berth('-f', 'json', 'server', 'shelve', 'shelvee', '--wait'));
    assert.deepEqual([shown.status, shown.task_state], ['SHELVED', null]);
    const snapshot = shown.system_metadata?.shelved_image_id;
    assert.ok(snapshot);
    assert.equal((await containersOf(created.id))[0]?.State, 'exited');

    // A shelved instance is shelved once.
    const again = await berth('server', 'shelve', 'shelvee');
    assert.equal(again.code, 1);
    assert.match(again.stderr, /cannot shelve instance .* it is shelved/);

    shown = json<Shown>(await berth('-f', 'json', 'server', 'unshelve', 'shelvee', '--wait'));
    assert.deepEqual([shown.status, shown.system_metadata], ['ACTIVE', {}]);
    assert.equal((await containersOf(created.id))[0]?.State, 'running');

    shown = json<Shown>(await berth('-f', 'json', 'server', 'shelve', 'shelvee', '--offload', '--wait'));
    assert.deepEqual([shown.status, shown.task_state], ['SHELVED_OFFLOADED', null]);
    assert.deepEqual(await containersOf(created.id), []);
    const second = shown.system_metadata?.shelved_image_id;
    assert.ok(second && second !== snapshot);
    assert.equal(json<{ status: string }>(await berth('-f', 'json', 'image', 'show', second)).status, 'active');
    assert.notEqual((await berth('image', 'show', snapshot)).code, 0, 'the first snapshot went with the first unshelve');

    shown = json<Shown>(await berth('-f', 'json', 'server', 'unshelve', 'shelvee', '--wait'));
    assert.equal(shown.status, 'ACTIVE');
    assert.equal((await containersOf(created.id))[0]?.State, 'running');
    assert.notEqual((await berth('image', 'show', second)).code, 0, 'the snapshot is deleted');
  });
});
