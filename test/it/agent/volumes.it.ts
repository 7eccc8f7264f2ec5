import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAgentClient } from '../../../agent/client/http.js';
import type { AgentClient, InstanceSpec } from '../../../agent/client/types.js';
import type { Volume, VolumeChange } from '../../../agent/client/volumes.js';
import { createVolumeClient, type VolumeClient } from '../../../agent/client/volumes-http.js';
import { startAgent, type RunningAgent } from '../../../agent/main.js';
import { projectNetworkName } from '../../../agent/network/project-networks.js';
import { LABEL_PROJECT } from '../../../agent/runtime/types.js';
import { mountPointsOf } from '../../../agent/volumes/loop-devices.js';
import { GIB } from '../../../agent/volumes/types.js';
import { silentLogger } from '../../../common/log.js';
import { loadConfig } from '../../../conf/load.js';
import { containersOf } from '../../../tools/lib/stack.js';
import { FakeImageService } from '../../fakes/glance-images.js';
import { DOCKER_URL, TEST_IMAGE, docker, execWithStatus, imageIdOf, removeLabelled, removeNetworks, saveImage } from './docker-helpers.js';

const PROJECT = `berth-it-vol-${randomUUID().slice(0, 8)}`;
const OTHER = `${PROJECT}-other`;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, seconds: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${seconds}s`);
    await sleep(200);
  }
}

/** Local volumes on the real dockerd, loop devices and ext4 of this host. */
describe('berth-agent local volumes on a real host', function () {
  this.timeout(240_000);
  const store = new FakeImageService();
  let dir: string;
  let agent: RunningAgent | null = null;
  let client: AgentClient;
  let volumes: VolumeClient;
  let glanceId: string;

  const start = async (): Promise<void> => {
    const config = loadConfig({
      env: {},
      overrides: {
        DEFAULT: { state_path: dir },
        agent: { listen: '127.0.0.1:0', token: 'volumes-it-token-0123456789' },
        docker: { host_url: DOCKER_URL, stop_timeout: 1 },
        volumes: { max_size_gb: 2 },
      },
    });
    agent = await startAgent(config, { images: store, log: silentLogger() });
    client = createAgentClient({ url: agent.url, token: agent.token, retries: 0 });
    volumes = createVolumeClient({ url: agent.url, token: agent.token });
  };

  const spec = (project = PROJECT): InstanceSpec => ({
    image_id: glanceId,
    flavor: { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} },
    name: 'vol-vm',
    hostname: 'vol-guest',
    project_id: project,
    user_id: 'tester',
    metadata: {},
    user_data: null,
    key_data: null,
    fixed_ip: null,
  });

  const sh = async (uuid: string, script: string): Promise<{ output: string; exitCode: number | null }> => {
    const id = (await containersOf(uuid))[0]?.Id;
    assert.ok(id, `instance ${uuid} has a container`);
    return execWithStatus(id, ['sh', '-c', script]);
  };
  const volumeDir = (id: string): string => join(dir, 'volumes', id);
  const hostMounted = (id: string): boolean => mountPointsOf(readFileSync('/proc/self/mountinfo', 'utf8')).has(join(volumeDir(id), 'mnt'));
  const loopsOf = (id: string): string => execFileSync('losetup', ['-n', '-O', 'NAME', '-j', join(volumeDir(id), 'disk.img')], { encoding: 'utf8' }).trim();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'berth-volumes-it-'));
    glanceId = randomUUID();
    store.add(glanceId, { docker_image_id: await imageIdOf(TEST_IMAGE) }, () => saveImage(TEST_IMAGE));
    await start();
  });

  after(async () => {
    await removeLabelled(`${LABEL_PROJECT}=${PROJECT}`);
    await removeLabelled(`${LABEL_PROJECT}=${OTHER}`);
    for (const v of (await volumes.list().catch(() => [] as Volume[])) ?? []) {
      await volumes.detach(v.id).catch(() => undefined);
      await volumes.delete(v.id).catch(() => undefined);
    }
    await agent?.close();
    await removeNetworks([projectNetworkName(PROJECT), projectNetworkName(OTHER)]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a volume bound at create keeps its data over stop/start, a same-host resize, a restart of the agent with the host mount gone, and a rebuild', async () => {
    const vol = await volumes.create({ name: 'data', project_id: PROJECT, size_gb: 1 });
    assert.equal(vol.status, 'available');
    assert.ok(hostMounted(vol.id));
    const uuid = randomUUID();
    const change = await volumes.attach('data', { instance_uuid: uuid, project_id: PROJECT, mount_point: '/srv/data' });
    assert.equal(change.applies, 'next-create');
    await client.createInstance(uuid, spec());
    assert.equal((await volumes.get(vol.id)).status, 'in-use');

    const r = await sh(uuid, 'echo kept > /srv/data/hello && df -k /srv/data | tail -1 && grep " /srv/data " /proc/mounts');
    assert.equal(r.exitCode, 0, r.output);
    const sizeKb = Number(r.output.trim().split('\n')[0]!.split(/\s+/)[1]);
    assert.ok(sizeKb > 0.9 * 1024 * 1024 && sizeKb <= 1024 * 1024, `the guest sees a filesystem of the volume's size: ${sizeKb} KiB`);
    assert.match(r.output, /ext4 rw,nosuid,nodev/, 'no device files and no set-uid programs from the volume');

    await client.instanceAction(uuid, { action: 'stop', timeout: 1 });
    await client.instanceAction(uuid, { action: 'start' });
    assert.equal((await sh(uuid, 'cat /srv/data/hello')).output.trim(), 'kept', 'over stop and start');

    // A resize on the same host changes the limits in place: the volume stays.
    await client.resizeInstance(uuid, { vcpus: 1, memory_mb: 96, root_gb: 1, swap: 0, extra_specs: {} });
    assert.equal((await sh(uuid, 'cat /srv/data/hello')).output.trim(), 'kept', 'over a same-host resize');

    // The agent stops and the host's own mount goes (as after a crash); the container still holds
    // the loop device. The agent mounts that same device again: one filesystem, never two.
    await agent!.close();
    agent = null;
    execFileSync('umount', [join(volumeDir(vol.id), 'mnt')]);
    const loop = loopsOf(vol.id);
    assert.ok(loop.startsWith('/dev/loop'), 'the container keeps the loop device');
    await start();
    assert.ok(hostMounted(vol.id), 'mounted again at start-up');
    assert.equal(loopsOf(vol.id), loop);
    assert.equal((await volumes.get(vol.id)).status, 'in-use', 'the record survived the restart');

    // A rebuild: the container goes, a new one binds the same volume.
    await client.deleteInstance(uuid, { keepVolumes: true, timeout: 1 });
    assert.equal((await volumes.get(vol.id)).status, 'reserved');
    await client.createInstance(uuid, spec());
    assert.equal((await sh(uuid, 'cat /srv/data/hello')).output.trim(), 'kept', 'over the rebuild');

    // Deleting the instance frees the volume; deleting the volume leaves no mount and no loop device.
    await assert.rejects(volumes.delete(vol.id), (e: Error & { code?: string }) => e.code === 'VOLUME_IN_USE');
    await client.deleteInstance(uuid, { timeout: 1 });
    assert.equal((await volumes.get(vol.id)).status, 'available');
    await volumes.delete(vol.id);
    assert.equal(hostMounted(vol.id), false);
    assert.throws(() => statSync(volumeDir(vol.id)));
  });

  it('a full volume is ENOSPC inside the guest, and its file never grows past its size on the host', async () => {
    const vol = await volumes.create({ name: 'small', project_id: PROJECT, size_gb: 1 });
    const uuid = randomUUID();
    await volumes.attach(vol.id, { instance_uuid: uuid, project_id: PROJECT, mount_point: '/fill' });
    await client.createInstance(uuid, spec());
    const r = await sh(uuid, 'dd if=/dev/zero of=/fill/big bs=1M count=1200 2>&1; echo "dd=$?"; sync');
    assert.match(r.output, /No space left on device/);
    assert.match(r.output, /dd=1/);
    const disk = statSync(join(volumeDir(vol.id), 'disk.img'));
    assert.equal(disk.size, GIB, 'the backing file keeps its size');
    assert.ok(disk.blocks * 512 <= GIB, `blocks on the host: ${disk.blocks * 512}`);
    const ok = await sh(uuid, 'echo still > /tmp/root-fs-ok && cat /tmp/root-fs-ok');
    assert.equal(ok.output.trim(), 'still', "the guest's own filesystem is not the volume's");
    await client.deleteInstance(uuid, { timeout: 1 });
    await volumes.delete(vol.id);
  });

  it("refuses another project's volume and instance; attaches to and detaches from a running container, kept over restarts by the agent and by dockerd", async () => {
    const mine = await volumes.create({ name: 'mine', project_id: PROJECT, size_gb: 1 });
    const theirs = await volumes.create({ name: 'theirs', project_id: OTHER, size_gb: 1 });
    const uuid = randomUUID();
    const foreign = randomUUID();
    await client.createInstance(uuid, spec());
    await client.createInstance(foreign, spec(OTHER));
    await assert.rejects(
      volumes.attach(theirs.id, { instance_uuid: uuid, project_id: PROJECT, mount_point: '/x' }),
      (e: Error & { code?: string }) => e.code === 'VOLUME_NOT_FOUND',
    );
    await assert.rejects(
      volumes.attach(mine.id, { instance_uuid: foreign, project_id: PROJECT, mount_point: '/x' }),
      (e: Error & { code?: string }) => e.code === 'INSTANCE_NOT_FOUND',
    );
    // A mount point the guest made a symbolic link is refused: nothing is mounted where the link leads.
    await sh(uuid, 'ln -s /tmp /linked');
    await assert.rejects(
      volumes.attach(mine.id, { instance_uuid: uuid, project_id: PROJECT, mount_point: '/linked' }),
      (e: Error & { code?: string }) => e.code === 'VOLUME_FAILED',
    );
    assert.match((await sh(uuid, 'grep -c " /tmp " /proc/mounts')).output, /^0/);
    assert.equal((await volumes.get(mine.id)).status, 'available');

    // Hot: mounted into the running container at once.
    const attached: VolumeChange = await volumes.attach(mine.id, { instance_uuid: uuid, project_id: PROJECT, mount_point: '/x' });
    assert.deepEqual([attached.applies, attached.volume.status], ['now', 'in-use']);
    assert.equal((await sh(uuid, 'echo in > /x/f && cat /x/f && grep " /x " /proc/mounts')).output.split('\n')[0], 'in');

    // A start is a new mount namespace: the agent's own start and reboot mount it again ...
    await client.instanceAction(uuid, { action: 'stop', timeout: 1 });
    await client.instanceAction(uuid, { action: 'start' });
    assert.equal((await sh(uuid, 'cat /x/f')).output.trim(), 'in', 'after an agent-made start');
    // ... and so does one dockerd makes on its own (followed from its events).
    const id = (await containersOf(uuid))[0]!.Id;
    await docker('POST', `/containers/${id}/restart?t=0`);
    await until('mounted again after a restart by dockerd', 20, async () =>
      (await sh(uuid, 'cat /x/f 2>/dev/null')).output.trim() === 'in' ? true : undefined,
    );

    // Hot detach: gone from the running container at once, the volume free.
    const detached = await volumes.detach(mine.id, PROJECT);
    assert.deepEqual([detached.volume.status, detached.applies], ['available', 'now']);
    const gone = await sh(uuid, 'grep -c " /x " /proc/mounts; test -e /x/f; echo "present=$?"');
    assert.match(gone.output, /^0\npresent=1/);
    await client.instanceAction(uuid, { action: 'reboot', hard: true });
    assert.match((await sh(uuid, 'grep -c " /x " /proc/mounts')).output, /^0/, 'not mounted again after a detach');

    // Bound by the container's config after a rebuild: a detach waits for the next rebuild.
    await volumes.attach(mine.id, { instance_uuid: uuid, project_id: PROJECT, mount_point: '/x' });
    await client.deleteInstance(uuid, { keepVolumes: true, timeout: 1 });
    await client.createInstance(uuid, spec());
    assert.equal((await sh(uuid, 'cat /x/f')).output.trim(), 'in');
    const later = await volumes.detach(mine.id, PROJECT);
    assert.deepEqual([later.volume.status, later.applies], ['detaching', 'next-create']);
    await client.deleteInstance(uuid, { keepVolumes: true, timeout: 1 });
    await client.createInstance(uuid, spec());
    assert.match((await sh(uuid, 'grep -c " /x " /proc/mounts')).output, /^0/);
    assert.equal((await volumes.get(mine.id)).status, 'available');
    await client.deleteInstance(uuid, { timeout: 1 });
    await client.deleteInstance(foreign, { timeout: 1 });
  });
});
