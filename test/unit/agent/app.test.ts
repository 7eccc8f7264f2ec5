import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { BerthError } from '../../../common/errors.js';
import { errorCode, startHarness, type AgentHarness } from './harness.js';

const rejectsWith = (p: Promise<unknown>, code: string, status?: number) =>
  assert.rejects(p, (e: unknown) => e instanceof BerthError && e.code === code && (status === undefined || e.status === status));

describe('agent API', () => {
  let h: AgentHarness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  it('creates an instance: 201 first, 200 on a repeat, one container', async () => {
    const uuid = randomUUID();
    const first = await h.raw('PUT', `/v1/instances/${uuid}`, { body: JSON.stringify(h.spec()) });
    assert.equal(first.status, 201);
    const instance = (first.body as { instance: Record<string, unknown> }).instance;
    assert.equal(instance.uuid, uuid);
    assert.equal(instance.power_state, 'running');
    assert.equal(instance.image_id, h.imageId);
    assert.equal(instance.project_id, 'demo');
    const again = await h.raw('PUT', `/v1/instances/${uuid}`, { body: JSON.stringify(h.spec()) });
    assert.equal(again.status, 200);
    assert.equal(h.runtime.containers.size, 1);
    assert.equal(h.store.downloads, 1);
  });

  it('gets, lists and deletes through the client; delete twice succeeds', async () => {
    const uuid = randomUUID();
    await h.client.createInstance(uuid, h.spec());
    assert.equal((await h.client.getInstance(uuid))?.power_state, 'running');
    assert.deepEqual(
      (await h.client.listInstances()).map((i) => i.uuid),
      [uuid],
    );
    await h.client.deleteInstance(uuid, { timeout: 0 });
    await h.client.deleteInstance(uuid);
    assert.equal(await h.client.getInstance(uuid), null);
    const res = await h.raw('GET', `/v1/instances/${uuid}`);
    assert.equal(res.status, 404);
    assert.equal(errorCode(res.body), 'INSTANCE_NOT_FOUND');
  });

  it('runs actions and refuses those that do not apply to the state', async () => {
    const uuid = randomUUID();
    await h.client.createInstance(uuid, h.spec());
    const act = (a: Parameters<typeof h.client.instanceAction>[1]) => h.client.instanceAction(uuid, a);
    assert.equal((await act({ action: 'stop', timeout: 0 })).power_state, 'stopped');
    assert.equal((await act({ action: 'stop' })).power_state, 'stopped');
    await rejectsWith(act({ action: 'pause' }), 'INSTANCE_INVALID_STATE', 409);
    await rejectsWith(act({ action: 'suspend' }), 'INSTANCE_INVALID_STATE', 409);
    assert.equal((await act({ action: 'start' })).power_state, 'running');
    assert.equal((await act({ action: 'pause' })).power_state, 'paused');
    await rejectsWith(act({ action: 'start' }), 'INSTANCE_INVALID_STATE', 409);
    await rejectsWith(act({ action: 'reboot' }), 'INSTANCE_INVALID_STATE', 409);
    assert.equal((await act({ action: 'reboot', hard: true })).power_state, 'running');
    assert.equal((await act({ action: 'suspend' })).power_state, 'paused');
    assert.equal((await act({ action: 'resume' })).power_state, 'running');
    assert.equal((await act({ action: 'unpause' })).power_state, 'running');
    assert.equal((await act({ action: 'reboot' })).power_state, 'running');
    await rejectsWith(h.client.instanceAction(randomUUID(), { action: 'start' }), 'INSTANCE_NOT_FOUND', 404);
  });

  it('reports an OOM-killed instance as crashed, and starts it again', async () => {
    const uuid = randomUUID();
    await h.client.createInstance(uuid, h.spec());
    h.runtime.oomKill(uuid);
    assert.equal((await h.client.getInstance(uuid))?.power_state, 'crashed');
    assert.equal((await h.client.instanceAction(uuid, { action: 'start' })).power_state, 'running');
  });

  it('returns the console tail', async () => {
    const uuid = randomUUID();
    await h.client.createInstance(uuid, h.spec({ hostname: 'web-1' }));
    h.runtime.writeConsole(uuid, 'one\ntwo\nthree\n');
    assert.match(await h.client.consoleLog(uuid), /berth-guest: booted web-1/);
    assert.equal(await h.client.consoleLog(uuid, 2), 'two\nthree\n');
    await rejectsWith(h.client.consoleLog(randomUUID()), 'INSTANCE_NOT_FOUND', 404);
  });

  it('leaves no container when the start fails, and says RUNTIME_ERROR', async () => {
    const uuid = randomUUID();
    h.runtime.failNextStart = true;
    const res = await h.raw('PUT', `/v1/instances/${uuid}`, { body: JSON.stringify(h.spec()) });
    assert.equal(res.status, 500);
    assert.equal(errorCode(res.body), 'RUNTIME_ERROR');
    assert.equal(h.runtime.containers.size, 0);
  });

  it('answers IMAGE_NOT_FOUND for an image the store lacks, creating nothing', async () => {
    await rejectsWith(h.client.createInstance(randomUUID(), h.spec({ image_id: randomUUID() })), 'IMAGE_NOT_FOUND', 404);
    assert.equal(h.runtime.containers.size, 0);
  });

  it('serializes concurrent creates of one uuid into one container', async () => {
    const uuid = randomUUID();
    const all = await Promise.all([1, 2, 3, 4].map(() => h.raw('PUT', `/v1/instances/${uuid}`, { body: JSON.stringify(h.spec()) })));
    assert.deepEqual(all.map((r) => r.status).sort(), [200, 200, 200, 201]);
    assert.equal(h.runtime.containers.size, 1);
  });

  it('reports health, and 503 RUNTIME_UNAVAILABLE when the runtime is down', async () => {
    assert.deepEqual(await h.client.health(), { ok: true, runtime: true });
    const open = await h.raw('GET', '/healthz', { token: null });
    assert.equal(open.status, 200);
    h.runtime.unavailable = true;
    assert.deepEqual(await h.client.health(), { ok: false, runtime: false });
    assert.equal((await h.raw('GET', '/healthz', { token: null })).status, 503);
    await assert.rejects(
      h.client.listInstances(),
      (e: unknown) => e instanceof BerthError && e.code === 'RUNTIME_UNAVAILABLE' && e.status === 503 && e.retryable,
    );
  });
});
