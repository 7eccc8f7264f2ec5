import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Volume } from '../../../agent/client/volumes.js';
import { LoopVolumeDevices } from '../../../agent/volumes/loop-devices.js';
import { silentLogger } from '../../../common/log.js';
import { containersOf, startStack, type Stack } from '../../../tools/lib/stack.js';
import { type CliResult, jsonOf, runBerth, stackCliEnv } from '../../support/berth-cli.js';

interface Shown {
  id: string;
  status: string;
  task_state: string | null;
  fault?: { message: string } | null;
}

/**
 * A server with a local volume is not shelved and offloaded (the volume would stay behind on
 * the host, attached to an instance that left): refused by the CLI before it sends anything,
 * and by the node itself when the offload follows the shelve; after a detach the offload works.
 */
describe('berth server shelve of a server with a local volume (standalone node)', function () {
  this.timeout(300_000);
  let stack: Stack;
  let env: NodeJS.ProcessEnv;
  let scratch: string;
  let volumesPath: string;

  const berth = (...args: string[]): Promise<CliResult> => runBerth(args, env, { timeoutMs: 180_000 });
  const show = async (ref: string): Promise<Shown> => jsonOf<Shown>(await berth('-f', 'json', 'server', 'show', ref));

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'berth-cli-volume-moves-'));
    volumesPath = join(scratch, 'volumes');
    // nova's default: a shelve offloads at once.
    stack = await startStack({ overrides: { volumes: { path: volumesPath }, compute: { shelved_offload_time: 0 } } });
    env = stackCliEnv(stack, scratch);
  });
  after(async () => {
    await stack?.stop();
    const devices = new LoopVolumeDevices({ root: volumesPath, log: silentLogger() });
    for (const id of await devices.list()) await devices.destroy(id);
    rmSync(scratch, { recursive: true, force: true });
  });

  it('shelve --offload is refused with the volume attached, the server untouched; after a detach it is offloaded and the volume freed', async () => {
    const image = await stack.testImage();
    const vol = jsonOf<Volume>(await berth('-f', 'json', 'volume', 'create', '--size', '1', '--project', 'alpha', 'data'));
    const created = jsonOf<Shown>(
      await berth(
        '-f',
        'json',
        'server',
        'create',
        '--image',
        image.id,
        '--flavor-vcpus',
        '1',
        '--flavor-ram',
        '64',
        '--name',
        'keeper',
        '--project',
        'alpha',
        '--volume',
        'data:/srv/data',
        '--wait',
      ),
    );
    stack.track(created.id);
    assert.equal(created.status, 'ACTIVE');

    // The CLI asks the node's agent first: nothing is sent.
    const refused = await berth('server', 'shelve', 'keeper', '--offload', '--wait');
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /LOCAL_VOLUMES_ATTACHED/);
    assert.match(refused.stderr, new RegExp(`detach them first .*Attached: data \\(${vol.id}\\) at /srv/data`));
    let now = await show('keeper');
    assert.deepEqual([now.status, now.task_state, now.fault ?? null], ['ACTIVE', null, null]);

    // A plain shelve on this node offloads at once: the node refuses it itself before it stops the guest.
    const byNode = await berth('-f', 'json', 'server', 'shelve', 'keeper', '--wait');
    assert.equal(byNode.code, 1, 'the shelve action failed');
    now = await show('keeper');
    assert.deepEqual([now.status, now.task_state], ['ACTIVE', null]);
    assert.match(now.fault?.message ?? '', /cannot be shelved and offloaded with local volumes attached/);
    assert.equal((await containersOf(created.id))[0]?.State, 'running');
    assert.equal(jsonOf<Volume>(await berth('-f', 'json', 'volume', 'show', vol.id)).status, 'in-use');

    // Detached (it leaves with the container), the offload goes through and frees the volume.
    assert.equal(jsonOf<Volume>(await berth('-f', 'json', 'server', 'volume', 'detach', 'keeper', 'data')).status, 'detaching');
    now = jsonOf<Shown>(await berth('-f', 'json', 'server', 'shelve', 'keeper', '--offload', '--wait'));
    assert.deepEqual([now.status, now.task_state], ['SHELVED_OFFLOADED', null]);
    assert.deepEqual(await containersOf(created.id), []);
    assert.equal(jsonOf<Volume>(await berth('-f', 'json', 'volume', 'show', vol.id)).status, 'available');

    assert.equal((await berth('server', 'delete', 'keeper', '--wait')).code, 0);
    assert.equal((await berth('volume', 'delete', vol.id)).code, 0);
  });
});
