import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sinon from 'sinon';
import { silentLogger } from '../../../common/log.js';
import { LoopVolumeDevices, mountPointsOf, type RunCommand } from '../../../agent/volumes/loop-devices.js';
import { VolumeRecords } from '../../../agent/volumes/records.js';
import { Volumes } from '../../../agent/volumes/volumes.js';
import { PythonNamespaceMounts } from '../../../agent/volumes/ns-mounts.js';
import { createBody } from '../../../agent/runtime/docker-create-body.js';
import { FakeVolumeDevices } from '../../fakes/volume-devices.js';

describe('local volumes: records, loop devices, container binds', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-volumes-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const volumesOver = (devices: FakeVolumeDevices) =>
    new Volumes({
      devices,
      records: VolumeRecords.open(join(dir, 'records'), silentLogger()),
      container: async () => null,
      log: silentLogger(),
      maxSizeGb: 10,
      maxTotalGb: 0,
    });

  it('a restarted agent reads every volume and attachment back, and mounts them all again', async () => {
    const devices = new FakeVolumeDevices(join(dir, 'devices'));
    const first = volumesOver(devices);
    const v = await first.create({ name: 'a', project_id: 'p', size_gb: 2 });
    const uuid = randomUUID();
    await first.attach(v.id, { instance_uuid: uuid, project_id: 'p', mount_point: '/data' }, '/data');
    await devices.deactivate(v.id);
    // A torn temporary file of an interrupted write is not a record.
    await writeFile(join(dir, 'records', `${randomUUID()}.json.tmp`), '{');

    const second = volumesOver(devices);
    devices.calls.length = 0;
    await second.restore();
    assert.deepEqual(devices.calls, ['activate']);
    const back = await second.get(v.id);
    assert.deepEqual([back.name, back.size_gb, back.status, back.attachment?.instance_uuid], ['a', 2, 'reserved', uuid]);
    assert.ok(back.usage, 'mounted again');
    const binds = await second.bindsFor(uuid, 'p');
    assert.deepEqual(
      binds.map((b) => [b.volume_id, b.target]),
      [[v.id, '/data']],
    );
  });

  it('LoopVolumeDevices: mkfs without reserved blocks, mounts nodev,nosuid through a new loop device or the one still holding the file', async () => {
    const mounted = new Set<string>();
    const run = sinon.stub<Parameters<RunCommand>, ReturnType<RunCommand>>().callsFake(async (file, args) => {
      if (file === 'mount') mounted.add(args.at(-1)!);
      if (file === 'umount') mounted.delete(args[0]!);
      return { stdout: '' };
    });
    const mountinfo = async () => [...mounted].map((m, i) => `${30 + i} 1 7:${i} / ${m.replace(/ /g, '\\040')} rw,nodev - ext4 /dev/loop${i} rw`).join('\n');
    const devices = new LoopVolumeDevices({ root: join(dir, 'vol s'), log: silentLogger(), run, mountinfo });
    const id = randomUUID();
    await devices.provision(id, 1);
    const mkfs = run.getCalls().find((c) => c.args[0] === 'mkfs.ext4')!;
    assert.deepEqual(mkfs.args[1].slice(0, 4), ['-q', '-F', '-m', '0']);
    assert.equal(mkfs.args[1].at(-1), join(dir, 'vol s', id, 'disk.img'), "the agent's own file, never a tenant's image");
    const mount = run.getCalls().find((c) => c.args[0] === 'mount')!;
    assert.deepEqual(mount.args[1].slice(0, 4), ['-t', 'ext4', '-o', 'loop,nodev,nosuid']);
    assert.equal((await readdir(join(dir, 'vol s', id))).includes('disk.img'), true);

    // The host's mount went away while a container still holds the loop device: mount that device.
    await devices.deactivate(id);
    run.resetHistory();
    run.withArgs('losetup').resolves({ stdout: '/dev/loop5\n' });
    await devices.activate(id);
    assert.deepEqual(
      run.getCalls().map((c) => [c.args[0], ...c.args[1]]),
      [
        ['losetup', '-n', '-O', 'NAME', '-j', join(dir, 'vol s', id, 'disk.img')],
        ['mount', '-t', 'ext4', '-o', 'nodev,nosuid', '/dev/loop5', join(dir, 'vol s', id, 'mnt')],
      ],
    );
    run.resetHistory();
    await devices.activate(id);
    assert.equal(run.callCount, 0, 'a mounted volume is left as it is');
    await assert.rejects(devices.activate('../../etc'), (e: Error & { code?: string }) => e.code === 'VOLUME_NOT_FOUND');
  });

  it('LoopVolumeDevices: a failed mkfs leaves nothing behind and says VOLUME_FAILED without host paths', async () => {
    const run: RunCommand = async (file) => {
      if (file === 'mkfs.ext4') throw new Error(`mkfs.ext4 failed: ${dir}/x: no space`);
      return { stdout: '' };
    };
    const devices = new LoopVolumeDevices({ root: dir, log: silentLogger(), run, mountinfo: async () => '' });
    const id = randomUUID();
    await assert.rejects(devices.provision(id, 1), (e: Error & { code?: string }) => e.code === 'VOLUME_FAILED' && !e.message.includes(dir));
    assert.deepEqual(await devices.list(), []);
  });

  it('reads mount points from mountinfo, octal escapes included', () => {
    const points = mountPointsOf('36 35 98:0 / /mnt/a\\040b rw - ext3 /dev/root rw\n37 35 98:0 / /srv rw - ext3 /dev/root rw\n');
    assert.deepEqual([...points], ['/mnt/a b', '/srv']);
  });

  it("a container binds its volumes read-write and Berth's own files read-only", () => {
    const body = createBody(
      {
        uuid: 'u',
        imageId: 'sha256:x',
        glanceImageId: 'g',
        projectId: 'p',
        hostname: 'h',
        flavor: { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} },
        mounts: [{ source: '/s/config', target: '/run/berth/config' }],
        volumes: [{ source: '/v/mnt/data', target: '/data' }],
      },
      'no',
      undefined,
      'agent',
    ) as { HostConfig: { Mounts: unknown[] } };
    assert.deepEqual(body.HostConfig.Mounts, [
      { Type: 'bind', Source: '/s/config', Target: '/run/berth/config', ReadOnly: true },
      { Type: 'bind', Source: '/v/mnt/data', Target: '/data', ReadOnly: false },
    ]);
  });
});

describe('local volumes: attach to and detach from a running container (hot)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'berth-volumes-hot-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const setup = (container: { projectId: string; pid: number | null } | null) => {
    const ns = { mount: sinon.stub().resolves(), unmount: sinon.stub().resolves() };
    const state = { container };
    const volumes = new Volumes({
      devices: new FakeVolumeDevices(join(dir, 'devices')),
      records: VolumeRecords.open(join(dir, 'records'), silentLogger()),
      container: async () => state.container,
      ns,
      log: silentLogger(),
      maxSizeGb: 10,
      maxTotalGb: 0,
    });
    return { ns, state, volumes };
  };
  const uuid = randomUUID();
  const req = (mount = '/data') => ({ instance_uuid: uuid, project_id: 'p', mount_point: mount });

  it('mounts into the running container now, again after each start, and unmounts on detach', async () => {
    const { ns, state, volumes } = setup({ projectId: 'p', pid: 4242 });
    const v = await volumes.create({ name: 'a', project_id: 'p', size_gb: 1 });
    const change = await volumes.attach(v.id, req(), '/data');
    assert.deepEqual([change.applies, change.volume.status], ['now', 'in-use']);
    sinon.assert.calledOnceWithExactly(ns.mount, 4242, join(dir, 'devices', v.id, 'data'), '/data');

    state.container = { projectId: 'p', pid: 5151 };
    await volumes.afterStart(uuid);
    sinon.assert.calledWith(ns.mount.secondCall, 5151, sinon.match.string, '/data');
    await volumes.afterStart(randomUUID());
    sinon.assert.calledTwice(ns.mount);

    const detached = await volumes.detach(v.id, 'p');
    assert.deepEqual([detached.applies, detached.volume.status], ['now', 'available']);
    sinon.assert.calledOnceWithExactly(ns.unmount, 5151, '/data');
    await volumes.afterStart(uuid);
    sinon.assert.calledTwice(ns.mount);
  });

  it('a stopped container gets it at its next start; a rebuild makes it part of the config', async () => {
    const { ns, state, volumes } = setup({ projectId: 'p', pid: null });
    const v = await volumes.create({ name: 'a', project_id: 'p', size_gb: 1 });
    assert.equal((await volumes.attach(v.id, req(), '/data')).applies, 'next-start');
    sinon.assert.notCalled(ns.mount);
    state.container = { projectId: 'p', pid: 7 };
    await volumes.afterStart(uuid);
    sinon.assert.calledOnce(ns.mount);

    // A rebuild: the new container's config binds it; no mount by hand after its starts.
    await volumes.released(uuid, true);
    const binds = await volumes.bindsFor(uuid, 'p');
    await volumes.bound(
      uuid,
      binds.map((b) => b.volume_id),
    );
    await volumes.afterStart(uuid);
    sinon.assert.calledOnce(ns.mount);
    const d = await volumes.detach(v.id, 'p');
    assert.deepEqual([d.applies, d.volume.status], ['next-create', 'detaching']);
    sinon.assert.notCalled(ns.unmount);
  });

  it('a failed mount leaves the volume available and says VOLUME_FAILED', async () => {
    const { ns, volumes } = setup({ projectId: 'p', pid: 9 });
    ns.mount.rejects(new Error('move_mount: Operation not permitted'));
    const v = await volumes.create({ name: 'a', project_id: 'p', size_gb: 1 });
    await assert.rejects(volumes.attach(v.id, req(), '/data'), (e: Error & { code?: string }) => e.code === 'VOLUME_FAILED');
    assert.equal((await volumes.get(v.id)).status, 'available');
  });
});

describe('PythonNamespaceMounts', () => {
  it('runs the helper once per mount point: a mount already there, or an unmount of nothing, is left', async () => {
    const points = new Set<string>(['/proc', '/already']);
    const run = sinon.stub().resolves();
    const ns = new PythonNamespaceMounts(run, async () => points);
    await ns.mount(42, '/host/vol/mnt/data', '/already');
    await ns.unmount(42, '/absent');
    sinon.assert.notCalled(run);
    await ns.mount(42, '/host/vol/mnt/data', '/data');
    await ns.unmount(42, '/already');
    assert.deepEqual(run.args, [[['mount', '42', '/data', '/host/vol/mnt/data']], [['umount', '42', '/already']]]);
  });
});
