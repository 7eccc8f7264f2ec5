import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { containersOf, startStack, type Stack } from '../../../tools/lib/stack.js';
import { STOCK_PYTHON } from '../../support/python.js';
import { waitUntil } from '../../support/waits.js';

const SCRIPT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'support', 'nova_compute_api.py');
const run = promisify(execFile);

/**
 * nova's own client code drives a Berth node: Debian's python3-nova (Zed) ComputeAPI with real
 * nova.objects, over the real broker, into real containers.
 */
describe('nova.compute.rpcapi.ComputeAPI (python3-nova) drives a Berth node', function () {
  this.timeout(120_000);
  let stack: Stack;
  let job: Record<string, unknown>;

  before(async () => {
    stack = await startStack();
    const image = await stack.testImage();
    const uuid = randomUUID();
    stack.track(uuid);
    job = {
      url: process.env.BERTH_TEST_TRANSPORT_URL ?? 'rabbit://guest:guest@127.0.0.1:5672/',
      exchange: stack.exchange,
      host: stack.host,
      instance: { uuid, image_id: image.id, name: 'nova-driven', memory_mb: 96, vcpus: 1 },
    };
  });
  after(async () => {
    await stack?.stop();
  });

  const uuid = () => (job.instance as { uuid: string }).uuid;
  async function nova(step: string, extra: Record<string, unknown> = {}): Promise<unknown> {
    const { stdout } = await run(STOCK_PYTHON, [SCRIPT, JSON.stringify({ ...job, step, ...extra })], { timeout: 60_000, env: { PATH: process.env.PATH } });
    const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as { ok: boolean; result: unknown; error?: unknown };
    assert.ok(out.ok, `${step} failed: ${JSON.stringify(out.error)}`);
    return out.result;
  }
  const vmState = async () => (await stack.driver.store.get(uuid()))?.vm_state;
  const containerState = async () => (await containersOf(uuid()))[0]?.State;

  it('build → stop → start → reboot → pause/unpause → console output → diagnostics → terminate', async () => {
    await nova('build');
    await waitUntil(async () => (await vmState()) === 'active', 60_000, 'active after build');
    assert.equal(await containerState(), 'running');
    const row = await stack.driver.store.get(uuid());
    assert.equal(JSON.parse(row!.flavor).memory_mb, 96);

    await nova('stop');
    await waitUntil(async () => (await vmState()) === 'stopped', 30_000, 'stopped');
    assert.equal(await containerState(), 'exited');

    await nova('start');
    await waitUntil(async () => (await vmState()) === 'active', 30_000, 'active after start');
    assert.equal(await containerState(), 'running');

    const actionsBefore = (await stack.driver.store.actions(uuid())).length;
    await nova('reboot', { reboot_type: 'HARD' });
    await waitUntil(
      async () =>
        (await stack.driver.store.actions(uuid())).length > actionsBefore &&
        (await vmState()) === 'active' &&
        (await stack.driver.store.get(uuid()))?.task_state === null,
      30_000,
      'rebooted',
    );
    assert.equal(await containerState(), 'running');

    await nova('pause');
    await waitUntil(async () => (await vmState()) === 'paused', 30_000, 'paused');
    assert.equal(await containerState(), 'paused');
    await nova('unpause');
    await waitUntil(async () => (await vmState()) === 'active', 30_000, 'unpaused');

    const console = await waitUntil(
      async () => {
        const out = (await nova('console', { tail_length: 50 })) as string;
        return out.includes('berth-guest: booted') ? out : undefined;
      },
      20_000,
      'console output with the boot banner',
      500,
    );
    assert.match(console, /berth-guest: booted nova-driven/);

    const diag = (await nova('diagnostics')) as { 'nova_object.data': { hypervisor: string; num_cpus: number } };
    assert.equal(diag['nova_object.data'].hypervisor, 'docker');
    assert.equal(diag['nova_object.data'].num_cpus, 1);

    await nova('terminate');
    await waitUntil(async () => (await vmState()) === 'deleted', 30_000, 'deleted');
    assert.deepEqual(await containersOf(uuid()), []);
    // The action is finished just after the row is marked deleted.
    await waitUntil(async () => (await stack.driver.store.actions(uuid())).every((a) => a.result !== null), 10_000, 'delete action finished');
    const actions = (await stack.driver.store.actions(uuid())).map((a) => `${a.action}:${a.result}`);
    assert.deepEqual(actions, ['create:Success', 'stop:Success', 'start:Success', 'reboot_hard:Success', 'pause:Success', 'unpause:Success', 'delete:Success']);
  });

  it('cache_images answers per image; host_maintenance_mode on and off; an evacuation (rebuild_instance recreate) boots the instance here', async () => {
    const imageId = (job.instance as { image_id: string }).image_id;
    const unknown = randomUUID();
    assert.deepEqual(await nova('cache_images', { image_ids: [imageId, unknown] }), { [imageId]: 'existing', [unknown]: 'error' });

    assert.equal(await nova('maintenance', { mode: true }), 'on_maintenance');
    assert.equal(await nova('maintenance', { mode: false }), 'off_maintenance');

    const evacuated = randomUUID();
    stack.track(evacuated);
    const migrationUuid = randomUUID();
    await nova('evacuate', { instance: { ...(job.instance as object), uuid: evacuated, name: 'evacuated' }, from: 'gone-host', migration_uuid: migrationUuid });
    await waitUntil(async () => (await stack.driver.store.getMigration(migrationUuid))?.status === 'done', 60_000, 'evacuation done');
    const row = (await stack.driver.store.get(evacuated))!;
    assert.deepEqual([row.host, row.vm_state, row.task_state], [stack.host, 'active', null]);
    const m = (await stack.driver.store.getMigration(migrationUuid))!;
    assert.deepEqual([m.migration_type, m.source_compute, m.dest_compute], ['evacuation', 'gone-host', stack.host]);
    assert.equal((await containersOf(evacuated))[0]?.State, 'running');
  });
});
