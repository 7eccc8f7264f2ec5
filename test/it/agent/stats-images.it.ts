import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import type { AgentClient, HostImage, InstanceSpec } from '../../../agent/client/types.js';
import { type RunningAgent } from '../../../agent/main.js';
import { LABEL_HOST, LABEL_PROJECT } from '../../../agent/runtime/types.js';
import { parseEndpoint, readBody, requestJson } from '../../../common/http-client.js';
import { FakeImageService } from '../../fakes/glance-images.js';
import { TEST_IMAGE, docker, removeLabelled, saveImage, startTestAgent, type TestAgent } from './docker-helpers.js';

const PROJECT = 'berth-it-stats-images';

/** Stats, host labels, and the host's image cache (presence, fetch, clean-up) on the real dockerd. */
describe('berth-agent stats and image cache on dockerd', function () {
  this.timeout(120_000);
  const host = `it-host-${randomUUID().slice(0, 8)}`;
  let t: TestAgent;
  let agent: RunningAgent;
  let client: AgentClient;
  let store: FakeImageService;
  let baseGlanceId: string;
  const images: string[] = [];

  const spec = (image_id: string): InstanceSpec => ({
    image_id,
    flavor: { vcpus: 1, memory_mb: 48, root_gb: 1, swap: 0, extra_specs: {} },
    name: 'it-vm',
    hostname: 'it-stats',
    project_id: PROJECT,
    user_id: 'tester',
    metadata: {},
    user_data: null,
    key_data: null,
    fixed_ip: null,
  });
  const call = async <T>(method: string, path: string): Promise<{ status: number; body: T }> =>
    requestJson<T>(parseEndpoint(agent.url), { method, path, headers: { authorization: `Bearer ${agent.token}` }, accept: [404] });

  /** A unique image the host does not have, served by the store; removed in `after` whatever happens. */
  async function uniqueImage(): Promise<{ glanceId: string; imageId: string }> {
    const tag = `berth-it/cache:${randomUUID().slice(0, 8)}`;
    const made = await docker<{ Id: string }>('POST', `/containers/create?name=berth-it-src-${randomUUID()}`, {
      Image: TEST_IMAGE,
      Labels: { [LABEL_PROJECT]: PROJECT },
    });
    const [repo, version] = tag.split(':');
    const commit = await docker<{ Id: string }>(
      'POST',
      `/commit?container=${made.body.Id}&repo=${encodeURIComponent(repo!)}&tag=${version}&changes=${encodeURIComponent(`LABEL berth.it=${version}`)}`,
    );
    images.push(commit.body.Id);
    const archive = await readBody(await saveImage(tag), 512 * 1024 * 1024);
    await docker('DELETE', `/containers/${made.body.Id}?force=1`);
    await docker('DELETE', `/images/${encodeURIComponent(tag)}?force=1`);
    const glanceId = randomUUID();
    store.add(glanceId, { docker_image_id: commit.body.Id }, async () => Readable.from([archive]));
    return { glanceId, imageId: commit.body.Id };
  }

  before(async () => {
    await removeLabelled(`${LABEL_PROJECT}=${PROJECT}`);
    t = await startTestAgent({ DEFAULT: { host }, agent: { image_cache_max_unused_seconds: 1 } });
    ({ agent, client, store, baseGlanceId } = t);
  });

  after(async () => {
    await t?.close(PROJECT, images);
  });

  it('labels containers with the host and samples their stats', async () => {
    const uuid = randomUUID();
    await client.createInstance(uuid, spec(baseGlanceId));
    const { body } = await docker<{ Config: { Labels: Record<string, string> } }>('GET', `/containers/berth-${uuid}/json`);
    assert.equal(body.Config.Labels[LABEL_HOST], host);
    const s = await client.instanceStats(uuid);
    assert.equal(s.power_state, 'running');
    assert.ok(s.cpu.total_usage_ns > 0);
    assert.equal(typeof s.cpu.percent, 'number');
    assert.equal(s.memory.limit_bytes, 48 * 1024 * 1024);
    assert.ok(s.memory.usage_bytes > 0 && s.memory.usage_bytes < 48 * 1024 * 1024);
    assert.ok((s.pids ?? 0) >= 1);
    assert.ok(s.uptime_seconds !== null && s.uptime_seconds < 60);
    assert.ok(s.network.rx_packets >= 0 && s.network.tx_bytes >= 0);
    await client.deleteInstance(uuid, { timeout: 0 });
  });

  it('fetches an image on request, keeps it while used, removes it once unused, and never removes one it did not load', async () => {
    const { glanceId, imageId } = await uniqueImage();
    assert.equal((await call<{ image: HostImage }>('GET', `/v1/images/${glanceId}`)).body.image.present, false);
    // (The base image was downloaded once already, by the first create: an image on the host stands
    // for a Glance image only once the agent saw that image's content become it.)
    const downloads = store.downloads;
    const [a, b] = await Promise.all([
      call<{ image: HostImage }>('PUT', `/v1/images/${glanceId}`),
      call<{ image: HostImage }>('PUT', `/v1/images/${glanceId}`),
    ]);
    assert.equal(store.downloads - downloads, 1);
    for (const r of [a, b]) {
      assert.equal(r.status, 200);
      assert.equal(r.body.image.present, true);
      assert.equal(r.body.image.docker_image_id, imageId);
      assert.equal(r.body.image.loaded_by_agent, true);
      assert.ok((r.body.image.size_bytes ?? 0) > 0);
    }
    const base = await call<{ image: HostImage }>('PUT', `/v1/images/${baseGlanceId}`);
    assert.equal(base.body.image.loaded_by_agent, false);

    const uuid = randomUUID();
    await client.createInstance(uuid, spec(glanceId));
    await client.instanceAction(uuid, { action: 'stop', timeout: 0 });
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual((await call<{ removed: string[] }>('POST', '/v1/images/cleanup')).body.removed, []);
    await client.deleteInstance(uuid, { timeout: 0 });
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual((await call<{ removed: string[] }>('POST', '/v1/images/cleanup')).body.removed, [glanceId]);
    assert.equal((await docker('GET', `/images/${imageId}/json`, undefined, [404])).status, 404);
    assert.equal((await docker('GET', `/images/${encodeURIComponent(TEST_IMAGE)}/json`, undefined, [404])).status, 200);
    assert.equal((await call<{ image: HostImage }>('GET', `/v1/images/${glanceId}`)).body.image.present, false);
  });
});
