import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Volume } from '../../../agent/client/volumes.js';
import { LoopVolumeDevices } from '../../../agent/volumes/loop-devices.js';
import { silentLogger } from '../../../common/log.js';
import { containersOf, startStack, type Stack } from '../../../tools/lib/stack.js';
import { type CliResult, jsonOf, runBerth, stackCliEnv } from '../../support/berth-cli.js';
import { execWithStatus } from '../agent/docker-helpers.js';

interface Shown {
  id: string;
  status: string;
  project_id: string;
}

/** `berth volume` and `berth server create --volume` as a user runs them (standalone mode), against a node started by the test. */
describe('berth volume and server volumes against a running node', function () {
  this.timeout(240_000);
  let stack: Stack;
  let env: NodeJS.ProcessEnv;
  let scratch: string;
  let volumesPath: string;

  const berth = (...args: string[]): Promise<CliResult> => runBerth(args, env, { timeoutMs: 180_000 });
  const sh = async (uuid: string, script: string): Promise<string> => {
    const id = (await containersOf(uuid))[0]?.Id;
    assert.ok(id, `instance ${uuid} has a container`);
    const r = await execWithStatus(id, ['sh', '-c', script]);
    assert.equal(r.exitCode, 0, r.output);
    return r.output.trim();
  };

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'berth-cli-volume-'));
    volumesPath = join(scratch, 'volumes');
    stack = await startStack({ overrides: { volumes: { path: volumesPath } } });
    env = stackCliEnv(stack, scratch);
  });
  after(async () => {
    await stack?.stop();
    const devices = new LoopVolumeDevices({ root: volumesPath, log: silentLogger() });
    for (const id of await devices.list()) await devices.destroy(id);
    rmSync(scratch, { recursive: true, force: true });
  });

  it('create --volume binds it; the data survives a rebuild; delete is refused while attached; a project sees only its own', async () => {
    const image = await stack.testImage();
    const vol = jsonOf<Volume>(await berth('-f', 'json', 'volume', 'create', '--size', '1', '--project', 'alpha', 'data'));
    assert.deepEqual([vol.name, vol.size_gb, vol.status, vol.project_id], ['data', 1, 'available', 'alpha']);
    jsonOf<Volume>(await berth('-f', 'json', 'volume', 'create', '--size', '1', '--project', 'beta', 'data'));

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
        'with-volume',
        '--project',
        'alpha',
        '--volume',
        'data:/srv/data',
        '--wait',
      ),
    );
    stack.track(created.id);
    assert.equal(created.status, 'ACTIVE');
    await sh(created.id, 'echo kept > /srv/data/hello');
    assert.equal(jsonOf<Volume>(await berth('-f', 'json', 'volume', 'show', 'data', '--project', 'alpha')).status, 'in-use');

    const rebuilt = jsonOf<Shown>(await berth('-f', 'json', 'server', 'rebuild', 'with-volume', '--image', image.id, '--wait'));
    assert.equal(rebuilt.status, 'ACTIVE');
    assert.equal(await sh(created.id, 'cat /srv/data/hello'), 'kept', 'a rebuild keeps the volume and its data');

    // Volumes stay on their node: a command aimed at another one is bad usage, not this node's volumes.
    const elsewhere = await berth('--host', 'another-node', 'volume', 'list');
    assert.equal(elsewhere.code, 2);
    assert.match(elsewhere.stderr, /volumes are local to a node/);

    const refused = await berth('volume', 'delete', vol.id);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /VOLUME_IN_USE/);

    // The other project's volume of the same name is not this server's to take.
    const betas = await listOf('beta');
    assert.deepEqual(
      betas.map((v) => [v.name, v.project_id]),
      [['data', 'beta']],
    );
    const foreign = await berth('server', 'volume', 'attach', 'with-volume', betas[0]!.id, '--mount', '/other');
    assert.equal(foreign.code, 1);
    assert.match(foreign.stderr, /VOLUME_NOT_FOUND/);
    const bad = await berth('server', 'volume', 'attach', 'with-volume', 'data', '--mount', '/proc/x');
    assert.match(bad.stderr, /mount_point cannot be at, under or above \/proc/);

    const listed = await berth('-f', 'json', 'server', 'volume', 'list', 'with-volume');
    assert.deepEqual(
      jsonOf<{ id: string }[]>(listed).map((v) => v.id),
      [vol.id],
    );

    // Hot attach to the running server, and detach.
    jsonOf<Volume>(await berth('-f', 'json', 'volume', 'create', '--size', '1', '--project', 'alpha', 'logs'));
    const hot = await berth('-f', 'json', 'server', 'volume', 'attach', 'with-volume', 'logs', '--mount', '/var/log/app');
    assert.equal(jsonOf<Volume>(hot).status, 'in-use');
    assert.equal(hot.stderr, '', 'mounted at once: nothing to wait for');
    assert.equal(await sh(created.id, 'echo line > /var/log/app/l && grep -c " /var/log/app " /proc/mounts'), '1');
    assert.equal(jsonOf<Volume>(await berth('-f', 'json', 'server', 'volume', 'detach', 'with-volume', 'logs')).status, 'available');
    assert.equal(await sh(created.id, 'grep -c " /var/log/app " /proc/mounts || true'), '0');
    const bound = await berth('-f', 'json', 'server', 'volume', 'detach', 'with-volume', 'data');
    assert.equal(jsonOf<Volume>(bound).status, 'detaching');
    assert.match(bound.stderr, /sees it at its next rebuild/);
    assert.equal((await berth('volume', 'delete', 'logs', '--project', 'alpha')).code, 0);

    assert.equal((await berth('server', 'delete', 'with-volume', '--wait')).code, 0);
    assert.equal(jsonOf<Volume>(await berth('-f', 'json', 'volume', 'show', vol.id)).status, 'available');
    assert.equal((await berth('volume', 'delete', 'data', '--project', 'alpha')).code, 0);
    assert.deepEqual(
      (await listOf('alpha')).map((v) => v.name),
      [],
    );
  });

  async function listOf(project: string): Promise<Volume[]> {
    return jsonOf<Volume[]>(await berth('-f', 'json', 'volume', 'list', '--project', project));
  }
});
