import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { FlavorSpec } from '../../agent/client/types.js';
import { STALE_NETWORK, type ContainerRuntime, type ContainerSpec } from '../../agent/runtime/types.js';
import { BerthError } from '../../common/errors.js';
import { imageIdsInArchive } from '../fakes/docker-archive.js';

/** What the suite needs from a backend under test. */
export interface RuntimeHarness {
  runtime: ContainerRuntime;
  /** An image present in the runtime whose guest prints `berth-guest: booted <hostname>` and runs until SIGTERM. */
  imageId: string;
  /** A docker-archive and the image id it holds. */
  archive(): Promise<{ stream: NodeJS.ReadableStream; imageId: string }>;
  /** A reference the runtime can pull from a loopback registry, and the image id it names. */
  pullable(): Promise<{ reference: string; imageId: string }>;
  /** A reference on the same registry that names no image. */
  unknownReference: string;
  /** Makes a container without Berth's labels. */
  addForeignContainer(): Promise<void>;
  /** The compute host the runtime under test was made for. */
  host: string;
  /**
   * Makes a never-started container with Berth's instance and project labels for `uuid`, and the
   * host label `host` (none when null, as containers made before host labels existed).
   */
  addBerthContainer(uuid: string, host: string | null): Promise<void>;
  /** Removes everything the harness and the suite made, whatever state they were left in. */
  cleanup(): Promise<void>;
}

const FLAVOR: FlavorSpec = { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} };

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof BerthError, `expected a BerthError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

async function eventually(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** One suite for every ContainerRuntime, so the fake cannot drift from Docker. */
export function containerRuntimeConformance(name: string, makeHarness: () => Promise<RuntimeHarness>): void {
  describe(`ContainerRuntime conformance: ${name}`, function () {
    this.timeout(60_000);
    let h: RuntimeHarness;
    let rt: ContainerRuntime;
    const spec = (overrides: Partial<ContainerSpec> = {}): ContainerSpec => ({
      uuid: randomUUID(),
      imageId: h.imageId,
      glanceImageId: randomUUID(),
      projectId: 'conformance',
      hostname: 'guest-1',
      flavor: FLAVOR,
      ...overrides,
    });
    const state = async (uuid: string): Promise<string | undefined> => (await rt.inspect(uuid))?.state;

    before(async () => {
      h = await makeHarness();
      rt = h.runtime;
    });
    after(async () => {
      await h?.cleanup();
    });

    it('answers a ping and knows which images it has', async () => {
      assert.equal(await rt.ping(), true);
      assert.equal(await rt.hasImage(h.imageId), true);
      assert.equal(await rt.hasImage(`sha256:${'0'.repeat(64)}`), false);
    });

    it('loads a docker-archive so its image id is present', async () => {
      const { stream, imageId } = await h.archive();
      await rt.loadImage(stream);
      assert.equal(await rt.hasImage(imageId), true);
    });

    it('pulls an image by reference, and fails an unknown one with IMAGE_FETCH_FAILED', async () => {
      const { reference, imageId } = await h.pullable();
      await rt.pullImage(reference);
      assert.equal(await rt.hasImage(imageId), true);
      await rejectsWith(rt.pullImage(h.unknownReference), 'IMAGE_FETCH_FAILED');
    });

    it('creates a running, labelled container, and a second create makes no second one', async () => {
      const s = spec();
      const first = await rt.createContainer(s);
      assert.equal(first.created, true);
      assert.equal(first.info.state, 'running');
      assert.equal(first.info.uuid, s.uuid);
      assert.equal(first.info.projectId, 'conformance');
      assert.equal(first.info.glanceImageId, s.glanceImageId);
      assert.ok(first.info.createdAt && first.info.startedAt);
      const second = await rt.createContainer(s);
      assert.equal(second.created, false);
      assert.equal(second.info.state, 'running');
      assert.equal((await rt.list()).filter((c) => c.uuid === s.uuid).length, 1);
    });

    it('refuses a create from an absent image and leaves nothing', async () => {
      const s = spec({ imageId: `sha256:${'1'.repeat(64)}` });
      await rejectsWith(rt.createContainer(s), 'IMAGE_NOT_FOUND');
      assert.equal(await rt.inspect(s.uuid), null);
    });

    it('moves through stop, start, pause, unpause, restart and kill', async () => {
      const { uuid } = spec();
      await rt.createContainer({ ...spec(), uuid });
      await rt.stop(uuid, 5);
      assert.equal(await state(uuid), 'exited');
      await rt.stop(uuid, 5);
      await rejectsWith(rt.pause(uuid), 'INSTANCE_INVALID_STATE');
      await rejectsWith(rt.unpause(uuid), 'INSTANCE_INVALID_STATE');
      await rt.start(uuid);
      assert.equal(await state(uuid), 'running');
      await rt.start(uuid);
      await rejectsWith(rt.unpause(uuid), 'INSTANCE_INVALID_STATE');
      await rt.pause(uuid);
      assert.equal(await state(uuid), 'paused');
      await rejectsWith(rt.pause(uuid), 'INSTANCE_INVALID_STATE');
      await rejectsWith(rt.start(uuid), 'INSTANCE_INVALID_STATE');
      await rt.unpause(uuid);
      assert.equal(await state(uuid), 'running');
      await rt.restart(uuid, 5);
      assert.equal(await state(uuid), 'running');
      // The test guest handles no SIGQUIT: as PID 1 the kernel drops it (the agent's crash dump request).
      await rt.kill(uuid, 'SIGQUIT');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(await state(uuid), 'running');
      await rt.kill(uuid);
      await eventually(async () => (await state(uuid)) === 'exited');
      assert.notEqual((await rt.inspect(uuid))?.exitCode, null);
      await rejectsWith(rt.kill(uuid), 'INSTANCE_INVALID_STATE');
    });

    it("updates a running, paused or stopped container's limits in place, and refuses a change of CPU bound kind", async () => {
      const s = spec();
      await rt.createContainer(s);
      const before = await rt.inspect(s.uuid);
      await rt.updateLimits(s.uuid, { ...FLAVOR, vcpus: 2, memory_mb: 96 });
      assert.equal(await state(s.uuid), 'running');
      assert.equal((await rt.inspect(s.uuid))?.startedAt, before?.startedAt, 'the guest was not restarted');
      assert.equal((await rt.stats(s.uuid)).memory.limit_bytes, 96 * 1024 * 1024);
      await rt.pause(s.uuid);
      await rt.updateLimits(s.uuid, { ...FLAVOR, memory_mb: 80 });
      assert.equal(await state(s.uuid), 'paused');
      await rt.unpause(s.uuid);
      await rt.stop(s.uuid, 5);
      await rt.updateLimits(s.uuid, { ...FLAVOR, memory_mb: 72, swap: 8, extra_specs: { 'quota:pids_limit': '64' } });
      assert.equal(await state(s.uuid), 'exited');
      await rt.start(s.uuid);
      assert.equal((await rt.stats(s.uuid)).memory.limit_bytes, 72 * 1024 * 1024);
      await rejectsWith(rt.updateLimits(s.uuid, { ...FLAVOR, extra_specs: { 'quota:cpu_quota': '50000' } }), 'INVALID_INPUT');
      assert.equal((await rt.stats(s.uuid)).memory.limit_bytes, 72 * 1024 * 1024);
      await rejectsWith(rt.updateLimits(randomUUID(), FLAVOR), 'INSTANCE_NOT_FOUND');
    });

    it('stops a paused container', async () => {
      const s = spec();
      await rt.createContainer(s);
      await rt.pause(s.uuid);
      await rt.stop(s.uuid, 5);
      assert.equal(await state(s.uuid), 'exited');
    });

    it('removes in any state, and removing again succeeds', async () => {
      const s = spec();
      await rt.createContainer(s);
      await rt.pause(s.uuid);
      await rt.remove(s.uuid, 5);
      await rt.remove(s.uuid, 5);
      assert.equal(await rt.inspect(s.uuid), null);
      assert.ok(!(await rt.list()).some((c) => c.uuid === s.uuid));
    });

    it('answers INSTANCE_NOT_FOUND for an unknown uuid', async () => {
      const uuid = randomUUID();
      assert.equal(await rt.inspect(uuid), null);
      await rejectsWith(rt.stop(uuid, 1), 'INSTANCE_NOT_FOUND');
      await rejectsWith(rt.start(uuid), 'INSTANCE_NOT_FOUND');
      await rejectsWith(rt.restart(uuid, 1), 'INSTANCE_NOT_FOUND');
      await rejectsWith(rt.pause(uuid), 'INSTANCE_NOT_FOUND');
      await rejectsWith(rt.unpause(uuid), 'INSTANCE_NOT_FOUND');
      await rejectsWith(rt.kill(uuid), 'INSTANCE_NOT_FOUND');
      await rejectsWith(rt.logs(uuid, { tail: 10, maxBytes: 1024 }), 'INSTANCE_NOT_FOUND');
      await rt.remove(uuid, 1);
    });

    it('lists only Berth-labelled containers', async () => {
      await h.addForeignContainer();
      const s = spec();
      await rt.createContainer(s);
      const listed = await rt.list();
      assert.ok(listed.some((c) => c.uuid === s.uuid));
      for (const c of listed) assert.match(c.uuid, /^[0-9a-f-]{36}$/);
    });

    it("lists only this host's containers, and unlabelled ones from before host labels", async () => {
      const mine = spec();
      await rt.createContainer(mine);
      const other = randomUUID();
      const legacy = randomUUID();
      await h.addBerthContainer(other, `${h.host}-other`);
      await h.addBerthContainer(legacy, null);
      const listed = new Set((await rt.list()).map((c) => c.uuid));
      assert.ok(listed.has(mine.uuid));
      assert.ok(listed.has(legacy));
      assert.ok(!listed.has(other));
      await rt.remove(other, 0);
      await rt.remove(legacy, 0);
    });

    it('refuses a static address a running container holds, naming a stale network, and leaves nothing', async () => {
      const name = `berth-conformance-${randomUUID().slice(0, 8)}`;
      const net = { name, ipv4: '10.254.249.9', macAddress: '02:42:0a:fe:f9:09' };
      const first = spec({ network: net });
      const second = spec({ network: net });
      try {
        assert.equal(await rt.createNetwork({ name, projectId: 'conformance', subnet: '10.254.249.0/24', gateway: '10.254.249.1' }), true);
        await rt.createContainer(first);
        await assert.rejects(
          rt.createContainer(second),
          (err: unknown) => err instanceof BerthError && err.code === 'RUNTIME_ERROR' && err.details.reason === STALE_NETWORK,
        );
        assert.equal(await rt.inspect(second.uuid), null);
        const removed = await rt.remove(first.uuid, 0);
        assert.equal(removed?.ipAddress, '10.254.249.9');
        assert.equal(await rt.remove(first.uuid, 0), null);
      } finally {
        await rt.remove(first.uuid, 0).catch(() => undefined);
        await rt.remove(second.uuid, 0).catch(() => undefined);
        await rt.removeNetwork(name).catch(() => undefined);
      }
    });

    it("reports an image's size and the images containers use", async () => {
      assert.ok(((await rt.inspectImage(h.imageId))?.sizeBytes ?? 0) > 0);
      assert.equal(await rt.inspectImage(`sha256:${'0'.repeat(64)}`), null);
      const s = spec();
      await rt.createContainer(s);
      await rt.stop(s.uuid, 5);
      assert.ok((await rt.imagesInUse()).has(h.imageId), 'a stopped container still uses its image');
    });

    it("samples a container's CPU, memory, network and pids", async () => {
      const s = spec();
      await rt.createContainer(s);
      const st = await rt.stats(s.uuid);
      assert.ok(st.cpu.total_usage_ns > 0);
      assert.equal(typeof st.cpu.percent, 'number');
      assert.equal(st.memory.limit_bytes, FLAVOR.memory_mb * 1024 * 1024);
      assert.ok(st.memory.usage_bytes > 0);
      assert.ok((st.pids ?? 0) >= 1);
      for (const v of Object.values(st.network)) assert.ok(Number.isInteger(v) && v >= 0);
      await rt.stop(s.uuid, 5);
      assert.equal((await rt.stats(s.uuid)).cpu.percent, null);
      await rejectsWith(rt.stats(randomUUID()), 'INSTANCE_NOT_FOUND');
    });

    it('makes project networks, gives a container its fixed address, and removes unused networks only', async () => {
      const name = `berth-conformance-${randomUUID().slice(0, 8)}`;
      const s = spec({ network: { name, ipv4: '10.254.250.9', macAddress: '02:42:0a:fe:fa:09' } });
      try {
        assert.equal(await rt.createNetwork({ name, projectId: 'conformance', subnet: '10.254.250.0/24', gateway: '10.254.250.1' }), true);
        const { ownedHere, ...listed } = (await rt.listNetworks()).find((n) => n.name === name) ?? {};
        assert.deepEqual(listed, { name, projectId: 'conformance', subnets: ['10.254.250.0/24'] });
        assert.notEqual(ownedHere, false, 'a network this runtime made is its own');
        assert.equal(await rt.createNetwork({ name, projectId: 'conformance', subnet: '10.254.251.0/24', gateway: '10.254.251.1' }), false);
        assert.equal(await rt.createNetwork({ name: `${name}-b`, projectId: 'conformance', subnet: '10.254.250.128/25', gateway: '10.254.250.129' }), false);
        const { info } = await rt.createContainer(s);
        assert.equal(info.ipAddress, '10.254.250.9');
        assert.deepEqual(await rt.networkAddresses(name), ['10.254.250.9']);
        await rt.stop(s.uuid, 5);
        assert.equal((await rt.inspect(s.uuid))?.ipAddress, '10.254.250.9');
        assert.deepEqual(await rt.networkAddresses(name), ['10.254.250.9']);
        assert.equal(await rt.removeNetwork(name), false);
        await rt.remove(s.uuid, 0);
        assert.equal(await rt.removeNetwork(name), true);
        assert.equal(await rt.removeNetwork(name), true);
        assert.ok(!(await rt.listNetworks()).some((n) => n.name === name));
      } finally {
        await rt.remove(s.uuid, 0).catch(() => undefined);
        await rt.removeNetwork(name).catch(() => undefined);
        await rt.removeNetwork(`${name}-b`).catch(() => undefined);
      }
    });

    it('commits a container to an image, exports it as a docker-archive, and removes it', async () => {
      const s = spec();
      await rt.createContainer(s);
      await rt.pause(s.uuid);
      const imageId = await rt.commit(s.uuid);
      try {
        assert.match(imageId, /^sha256:[0-9a-f]{64}$/);
        assert.equal(await state(s.uuid), 'paused');
        assert.equal(await rt.hasImage(imageId), true);
        assert.deepEqual(await imageIdsInArchive(await rt.exportImage(imageId)), [imageId]);
        await rejectsWith(rt.commit(randomUUID()), 'INSTANCE_NOT_FOUND');
      } finally {
        await rt.removeImage(imageId);
      }
      assert.equal(await rt.hasImage(imageId), false);
      await rt.removeImage(imageId);
      await rejectsWith(rt.exportImage(imageId), 'IMAGE_NOT_FOUND');
    });

    it('attaches a console to a running container only, and a closed console leaves the guest running', async () => {
      await rejectsWith(rt.checkConsole(randomUUID()), 'INSTANCE_NOT_FOUND');
      await rejectsWith(rt.attachConsole(randomUUID()), 'INSTANCE_NOT_FOUND');
      const s = spec();
      await rt.createContainer(s);
      await rt.checkConsole(s.uuid);
      const console = await rt.attachConsole(s.uuid);
      assert.ok(console.writable && console.readable);
      console.destroy();
      assert.equal(await state(s.uuid), 'running');
      await rt.stop(s.uuid, 5);
      await rejectsWith(rt.checkConsole(s.uuid), 'INSTANCE_INVALID_STATE');
      await rejectsWith(rt.attachConsole(s.uuid), 'INSTANCE_INVALID_STATE');
    });

    it('returns the guest console, tail-limited', async () => {
      const s = spec({ hostname: 'console-guest' });
      await rt.createContainer(s);
      await eventually(async () => (await rt.logs(s.uuid, { tail: 100, maxBytes: 65536 })).includes('berth-guest: booted console-guest'));
      assert.equal(await rt.logs(s.uuid, { tail: 0, maxBytes: 65536 }), '');
      const small = await rt.logs(s.uuid, { tail: 100, maxBytes: 10 });
      assert.ok(Buffer.byteLength(small) <= 10);
    });
  });
}
