import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { errorCode, startHarness, type AgentHarness } from './harness.js';

interface HostImageBody {
  image: { image_id: string; present: boolean; docker_image_id: string; size_bytes: number | null; loaded_by_agent: boolean };
}

describe('agent stats and host images API', () => {
  let h: AgentHarness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  it("samples an instance's resource use and uptime", async () => {
    const uuid = randomUUID();
    await h.client.createInstance(uuid, h.spec());
    const s = await h.client.instanceStats(uuid);
    assert.equal(s.uuid, uuid);
    assert.equal(s.power_state, 'running');
    assert.equal(s.memory.limit_bytes, 64 * 1024 * 1024);
    assert.equal(typeof s.cpu.percent, 'number');
    assert.ok(s.uptime_seconds !== null && s.uptime_seconds >= 0);
    await h.client.instanceAction(uuid, { action: 'stop' });
    const stopped = await h.client.instanceStats(uuid);
    assert.equal(stopped.uptime_seconds, null);
    assert.equal(stopped.cpu.percent, null);
  });

  it('answers INSTANCE_NOT_FOUND and INVALID_INPUT for stats', async () => {
    assert.equal(errorCode((await h.raw('GET', `/v1/instances/${randomUUID()}/stats`)).body), 'INSTANCE_NOT_FOUND');
    assert.equal(errorCode((await h.raw('GET', '/v1/instances/..%2f..%2fetc/stats')).body), 'INVALID_INPUT');
  });

  it('reports an image absent, fetches it once for concurrent PUTs, then reports it present', async () => {
    const before = await h.raw('GET', `/v1/images/${h.imageId}`);
    assert.equal(before.status, 200);
    assert.equal((before.body as HostImageBody).image.present, false);
    const puts = await Promise.all([h.raw('PUT', `/v1/images/${h.imageId}`), h.raw('PUT', `/v1/images/${h.imageId}`)]);
    for (const p of puts) {
      assert.equal(p.status, 200);
      assert.deepEqual((p.body as HostImageBody).image, { ...(before.body as HostImageBody).image, present: true, size_bytes: 4096, loaded_by_agent: true });
    }
    assert.equal(h.store.downloads, 1);
    assert.equal((await h.raw('PUT', `/v1/images/${h.imageId}`)).status, 200);
    assert.equal(h.store.downloads, 1);
  });

  it('answers IMAGE_NOT_FOUND for an image the store lacks and INVALID_INPUT for a bad id', async () => {
    const missing = await h.raw('GET', `/v1/images/${randomUUID()}`);
    assert.equal(missing.status, 404);
    assert.equal(errorCode(missing.body), 'IMAGE_NOT_FOUND');
    assert.equal(errorCode((await h.raw('PUT', `/v1/images/${randomUUID()}`)).body), 'IMAGE_NOT_FOUND');
    assert.equal((await h.raw('GET', '/v1/images/sha256:abc')).status, 400);
  });
});
