import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../../support/fixtures.js';
import { containersOf, startStack, type Stack } from '../../../tools/lib/stack.js';

const exec = promisify(execFile);

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}
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

  async function berth(...args: string[]): Promise<Result> {
    try {
      const { stdout, stderr } = await exec(join(ROOT, 'tools', 'berth'), args, { env, timeout: 180_000 });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  }
  const json = <T>(r: Result): T => {
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as T;
  };

  before(async () => {
    stack = await startStack({ overrides: { compute: { shelved_offload_time: -1 } } });
    scratch = mkdtempSync(join(tmpdir(), 'berth-cli-shelve-'));
    env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      BERTH_FROM_SOURCE: '1',
      BERTH_CONFIG: '',
      BERTH__DEFAULT__HOST: stack.host,
      BERTH__DEFAULT__CONTROL_EXCHANGE: stack.exchange,
      BERTH__DEFAULT__STATE_PATH: scratch,
      BERTH__GLANCE__API_URL: stack.imagesUrl,
      BERTH__AGENT__URL: stack.agentUrl,
      BERTH__AGENT__TOKEN: stack.agentToken,
    };
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
