import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { AgentClient, InstanceAction, InstanceSpec, InstanceStatus } from '../../agent/client/types.js';
import { BerthError } from '../../common/errors.js';

/** What the suite needs from an AgentClient under test. */
export interface AgentClientHarness {
  client: AgentClient;
  /** A spec naming an image the agent's image store holds. */
  spec(overrides?: Partial<InstanceSpec>): InstanceSpec;
  /** A Glance id the agent's image store does not know. */
  missingImageId: string;
  /** A new queued image in the agent's image store, ready to receive a snapshot. */
  queuedImage(): Promise<string>;
  /** Removes everything the harness and the suite made. */
  cleanup(): Promise<void>;
}

async function rejectsWith(p: Promise<unknown>, code: string, status: number, details: Record<string, unknown> = {}): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof BerthError, `expected a BerthError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.equal(err.status, status);
    for (const [k, v] of Object.entries(details)) assert.deepEqual(err.details[k], v, `details.${k}`);
    return true;
  });
}

/**
 * One suite for every AgentClient, so the driver's fake agent keeps the real agent's rules: the
 * power-state machine of InstanceManager (agent/instances.ts), idempotent repeats, and the error
 * codes and HTTP statuses of agent/errors.ts.
 */
export function agentClientConformance(name: string, makeHarness: () => Promise<AgentClientHarness>): void {
  describe(`AgentClient conformance: ${name}`, function () {
    this.timeout(120_000);
    let h: AgentClientHarness;
    let c: AgentClient;
    const made: string[] = [];

    const create = async (overrides: Partial<InstanceSpec> = {}): Promise<string> => {
      const uuid = randomUUID();
      made.push(uuid);
      await c.createInstance(uuid, h.spec(overrides));
      return uuid;
    };
    const act = async (uuid: string, action: InstanceAction): Promise<InstanceStatus['power_state']> => (await c.instanceAction(uuid, action)).power_state;
    const power = async (uuid: string): Promise<string | undefined> => (await c.getInstance(uuid))?.power_state;
    const refused = (uuid: string, action: InstanceAction, state: string): Promise<void> =>
      rejectsWith(c.instanceAction(uuid, action), 'INSTANCE_INVALID_STATE', 409, { uuid, operation: action.action, state });

    before(async () => {
      h = await makeHarness();
      c = h.client;
    });
    afterEach(async () => {
      for (const uuid of made.splice(0)) await c.deleteInstance(uuid, { timeout: 0 }).catch(() => undefined);
    });
    after(async () => {
      await h?.cleanup();
    });

    it('reports itself healthy', async () => {
      assert.deepEqual(await c.health(), { ok: true, runtime: true });
    });

    it('creates a running instance, and a repeat returns it without a second one', async () => {
      const uuid = randomUUID();
      made.push(uuid);
      const spec = h.spec();
      const first = await c.createInstance(uuid, spec);
      assert.equal(first.uuid, uuid);
      assert.equal(first.power_state, 'running');
      assert.equal(first.image_id, spec.image_id);
      assert.equal(first.project_id, spec.project_id);
      assert.equal(first.exit_code, null);
      assert.ok(first.created_at && first.started_at);
      const again = await c.createInstance(uuid, spec);
      assert.equal(again.uuid, uuid);
      assert.equal(again.power_state, 'running');
      assert.ok(again.created_at && again.started_at);
      assert.equal((await c.listInstances()).filter((i) => i.uuid === uuid).length, 1);
      assert.equal((await c.getInstance(uuid))?.power_state, 'running');
    });

    it('a repeated create returns the instance in the state it is in, and does not start it', async () => {
      const uuid = await create();
      await act(uuid, { action: 'stop', timeout: 0 });
      assert.equal((await c.createInstance(uuid, h.spec())).power_state, 'stopped');
      assert.equal(await power(uuid), 'stopped');
    });

    it('refuses an image the store lacks with IMAGE_NOT_FOUND (404) and leaves no instance', async () => {
      const uuid = randomUUID();
      await rejectsWith(c.createInstance(uuid, h.spec({ image_id: h.missingImageId })), 'IMAGE_NOT_FOUND', 404);
      assert.equal(await c.getInstance(uuid), null);
      assert.ok(!(await c.listInstances()).some((i) => i.uuid === uuid));
    });

    it("fetches an instance's image onto the host (repeatably), and refuses one the store lacks with IMAGE_NOT_FOUND (404)", async () => {
      const imageId = h.spec().image_id;
      const got = await c.fetchImage(imageId);
      assert.equal(got.image_id, imageId);
      assert.equal(got.present, true);
      assert.match(got.docker_image_id, /^sha256:[0-9a-f]{64}$/);
      assert.equal((await c.fetchImage(imageId)).present, true);
      await rejectsWith(c.fetchImage(h.missingImageId), 'IMAGE_NOT_FOUND', 404);
    });

    it('refuses a malformed uuid or action with INVALID_INPUT (400)', async () => {
      await rejectsWith(c.createInstance('not-a-uuid', h.spec()), 'INVALID_INPUT', 400);
      const uuid = await create();
      await rejectsWith(c.instanceAction(uuid, { action: 'hibernate' } as unknown as InstanceAction), 'INVALID_INPUT', 400);
      assert.equal(await power(uuid), 'running');
    });

    it('stops and starts, and a repeat of either is a no-op', async () => {
      const uuid = await create();
      assert.equal(await act(uuid, { action: 'stop', timeout: 0 }), 'stopped');
      assert.equal(await act(uuid, { action: 'stop', timeout: 0 }), 'stopped');
      assert.equal(await power(uuid), 'stopped');
      assert.equal(await act(uuid, { action: 'start' }), 'running');
      assert.equal(await act(uuid, { action: 'start' }), 'running');
      assert.equal(await power(uuid), 'running');
    });

    it('pauses and unpauses, suspends and resumes, and a repeat of each is a no-op', async () => {
      const uuid = await create();
      assert.equal(await act(uuid, { action: 'unpause' }), 'running');
      assert.equal(await act(uuid, { action: 'resume' }), 'running');
      assert.equal(await act(uuid, { action: 'pause' }), 'paused');
      assert.equal(await act(uuid, { action: 'pause' }), 'paused');
      assert.equal(await act(uuid, { action: 'suspend' }), 'paused');
      assert.equal(await act(uuid, { action: 'unpause' }), 'running');
      assert.equal(await act(uuid, { action: 'suspend' }), 'paused');
      assert.equal(await act(uuid, { action: 'resume' }), 'running');
    });

    it('refuses from stopped what needs a running guest, with INSTANCE_INVALID_STATE (409), and stays stopped', async () => {
      const uuid = await create();
      await act(uuid, { action: 'stop', timeout: 0 });
      for (const action of ['pause', 'unpause', 'suspend', 'resume'] as const) await refused(uuid, { action }, 'stopped');
      assert.equal(await power(uuid), 'stopped');
    });

    it('refuses start, stop and a soft reboot of a paused instance, with INSTANCE_INVALID_STATE (409), and stays paused', async () => {
      const uuid = await create();
      await act(uuid, { action: 'pause' });
      await refused(uuid, { action: 'start' }, 'paused');
      await refused(uuid, { action: 'stop', timeout: 0 }, 'paused');
      await refused(uuid, { action: 'reboot', timeout: 0 }, 'paused');
      await refused(uuid, { action: 'reboot', hard: false, timeout: 0 }, 'paused');
      assert.equal(await power(uuid), 'paused');
    });

    it('reboots: soft from running and from stopped, hard from paused', async () => {
      const uuid = await create();
      assert.equal(await act(uuid, { action: 'reboot', timeout: 0 }), 'running');
      await act(uuid, { action: 'stop', timeout: 0 });
      assert.equal(await act(uuid, { action: 'reboot', timeout: 0 }), 'running');
      await act(uuid, { action: 'pause' });
      assert.equal(await act(uuid, { action: 'reboot', hard: true }), 'running');
      assert.equal(await act(uuid, { action: 'reboot', hard: true }), 'running');
      await act(uuid, { action: 'stop', timeout: 0 });
      assert.equal(await act(uuid, { action: 'reboot', hard: true }), 'running');
    });

    it('deletes from any state, and deleting again succeeds', async () => {
      const running = await create();
      const paused = await create();
      const stopped = await create();
      await act(paused, { action: 'pause' });
      await act(stopped, { action: 'stop', timeout: 0 });
      for (const uuid of [running, paused, stopped]) {
        await c.deleteInstance(uuid, { timeout: 0 });
        await c.deleteInstance(uuid);
        assert.equal(await c.getInstance(uuid), null);
      }
      const listed = new Set((await c.listInstances()).map((i) => i.uuid));
      for (const uuid of [running, paused, stopped]) assert.ok(!listed.has(uuid));
      await rejectsWith(c.instanceAction(running, { action: 'start' }), 'INSTANCE_NOT_FOUND', 404);
    });

    it('answers INSTANCE_NOT_FOUND (404) for an unknown uuid, null from the getters, and deletes it', async () => {
      const uuid = randomUUID();
      assert.equal(await c.getInstance(uuid), null);
      for (const action of ['start', 'stop', 'reboot', 'pause', 'unpause', 'suspend', 'resume'] as const) {
        await rejectsWith(c.instanceAction(uuid, { action }), 'INSTANCE_NOT_FOUND', 404);
      }
      await rejectsWith(c.consoleLog(uuid), 'INSTANCE_NOT_FOUND', 404);
      await rejectsWith(c.instanceStats(uuid), 'INSTANCE_NOT_FOUND', 404);
      await rejectsWith(c.snapshotInstance(uuid, randomUUID()), 'INSTANCE_NOT_FOUND', 404);
      assert.equal(await c.getSnapshot(randomUUID()), null);
      await c.deleteInstance(uuid);
    });

    it('returns the console tail-limited: no lines for a tail of 0', async () => {
      const uuid = await create();
      assert.equal(typeof (await c.consoleLog(uuid)), 'string');
      assert.equal(await c.consoleLog(uuid, 0), '');
      assert.ok((await c.consoleLog(uuid, 1)).split('\n').filter((l) => l !== '').length <= 1);
    });

    it('grants serial console connections to a running instance only: a path for a token lease, none for a port lease; one endpoint port per instance', async () => {
      await rejectsWith(c.openSerialConsole(randomUUID()), 'INSTANCE_NOT_FOUND', 404);
      const uuid = await create();
      assert.equal(await c.serialConsolePort(uuid), null, 'no endpoint before a grant');
      const token = await c.openSerialConsole(uuid);
      assert.equal(typeof token.host, 'string');
      assert.ok(Number.isInteger(token.port) && token.port > 0);
      assert.match(token.path ?? '', /^\/\S+$/);
      assert.ok(Date.parse(token.expires_at) > Date.now());
      const port = await c.openSerialConsole(uuid, 'port');
      assert.equal(port.path, null);
      assert.equal(port.port, token.port);
      assert.equal(await c.serialConsolePort(uuid), token.port);
      await c.instanceAction(uuid, { action: 'stop' });
      await rejectsWith(c.openSerialConsole(uuid), 'INSTANCE_INVALID_STATE', 409, { uuid });
    });

    it('samples stats: uptime while running or paused, none and no CPU percent while stopped', async () => {
      const spec = h.spec();
      const uuid = await create();
      const running = await c.instanceStats(uuid);
      assert.equal(running.uuid, uuid);
      assert.equal(running.power_state, 'running');
      assert.equal(running.memory.limit_bytes, spec.flavor.memory_mb * 1024 * 1024);
      assert.equal(typeof running.uptime_seconds, 'number');
      assert.ok(running.sampled_at);
      await act(uuid, { action: 'pause' });
      const paused = await c.instanceStats(uuid);
      assert.equal(paused.power_state, 'paused');
      assert.equal(typeof paused.uptime_seconds, 'number');
      await act(uuid, { action: 'unpause' });
      await act(uuid, { action: 'stop', timeout: 0 });
      const stopped = await c.instanceStats(uuid);
      assert.equal(stopped.power_state, 'stopped');
      assert.equal(stopped.cpu.percent, null);
      assert.equal(stopped.uptime_seconds, null);
    });

    it('sends a crash dump request to a running guest (its state unchanged), and refuses a stopped one (409)', async () => {
      const uuid = await create();
      assert.equal(await act(uuid, { action: 'crash_dump' }), 'running');
      assert.equal(await act(uuid, { action: 'crash_dump' }), 'running');
      await act(uuid, { action: 'stop', timeout: 0 });
      await refused(uuid, { action: 'crash_dump' }, 'stopped');
    });

    it('resizes in place: new limits, same power state, repeatable; refuses a bad flavor (400) and an unknown uuid (404)', async () => {
      const spec = h.spec();
      const uuid = await create();
      const bigger = { ...spec.flavor, vcpus: spec.flavor.vcpus + 1, memory_mb: spec.flavor.memory_mb + 32 };
      const started = (await c.getInstance(uuid))?.started_at;
      assert.equal((await c.resizeInstance(uuid, bigger)).power_state, 'running');
      assert.equal((await c.resizeInstance(uuid, bigger)).power_state, 'running');
      assert.equal((await c.getInstance(uuid))?.started_at, started, 'the guest was not restarted');
      assert.equal((await c.instanceStats(uuid)).memory.limit_bytes, bigger.memory_mb * 1024 * 1024);
      await act(uuid, { action: 'stop', timeout: 0 });
      assert.equal((await c.resizeInstance(uuid, spec.flavor)).power_state, 'stopped');
      await rejectsWith(c.resizeInstance(uuid, { ...spec.flavor, memory_mb: 1 }), 'INVALID_INPUT', 400);
      await rejectsWith(c.resizeInstance(uuid, { ...spec.flavor, extra_specs: { 'quota:cpu_quota': '50000' } }), 'INVALID_INPUT', 400);
      await rejectsWith(c.resizeInstance(randomUUID(), spec.flavor), 'INSTANCE_NOT_FOUND', 404);
    });

    it('fetches an image onto the host (repeatable) and reports it present; an unknown image is IMAGE_NOT_FOUND (404)', async () => {
      const imageId = h.spec().image_id;
      const fetched = await c.fetchImage(imageId);
      assert.deepEqual([fetched.image_id, fetched.present], [imageId, true]);
      assert.match(fetched.docker_image_id, /^sha256:[0-9a-f]{64}$/);
      assert.equal((await c.fetchImage(imageId)).present, true);
      assert.deepEqual(await c.hostImage(imageId), await c.fetchImage(imageId));
      await rejectsWith(c.hostImage(h.missingImageId), 'IMAGE_NOT_FOUND', 404);
      await rejectsWith(c.fetchImage(h.missingImageId), 'IMAGE_NOT_FOUND', 404);
    });

    it('snapshots into a queued image once, refuses that image to another instance, and finishes active', async () => {
      const uuid = await create();
      const other = await create();
      const imageId = await h.queuedImage();
      const task = await c.snapshotInstance(uuid, imageId);
      assert.equal(task.image_id, imageId);
      assert.equal(task.instance_uuid, uuid);
      assert.equal(task.error, null);
      const again = await c.snapshotInstance(uuid, imageId);
      assert.equal(again.created_at, task.created_at);
      await rejectsWith(c.snapshotInstance(other, imageId), 'INVALID_INPUT', 400);
      const deadline = Date.now() + 60_000;
      let state = task.state;
      while (state !== 'active' && state !== 'failed' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        state = (await c.getSnapshot(imageId))?.state ?? 'failed';
      }
      assert.equal(state, 'active');
      assert.equal(await power(uuid), 'running', 'the guest runs again after its snapshot');
    });
  });
}
