import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { AgentClient, InstanceSpec } from '../../../agent/client/types.js';
import { type RunningAgent } from '../../../agent/main.js';
import { LABEL_INSTANCE, LABEL_PROJECT } from '../../../agent/runtime/types.js';
import { readBody } from '../../../common/http-client.js';
import { FakeImageService } from '../../fakes/glance-images.js';
import { TEST_IMAGE, docker, execIn, removeLabelled, saveImage, startTestAgent, type TestAgent } from './docker-helpers.js';

const PROJECT = 'berth-it-agent';

/** The agent in-process on the real dockerd, with an image service serving `docker save` output. */
describe('berth-agent on dockerd', function () {
  this.timeout(120_000);
  let t: TestAgent;
  let stateDir: string;
  let agent: RunningAgent;
  let client: AgentClient;
  let store: FakeImageService;
  let baseGlanceId: string;
  const committed: string[] = [];

  const spec = (image_id: string, overrides: Partial<InstanceSpec> = {}): InstanceSpec => ({
    image_id,
    flavor: { vcpus: 1, memory_mb: 96, root_gb: 1, swap: 32, extra_specs: { 'quota:pids_limit': '200' } },
    name: 'it-vm',
    hostname: 'it-guest',
    project_id: PROJECT,
    user_id: 'tester',
    metadata: {},
    user_data: null,
    key_data: null,
    fixed_ip: null,
    ...overrides,
  });
  const countContainers = async (uuid: string): Promise<number> => {
    const filters = encodeURIComponent(JSON.stringify({ label: [`${LABEL_INSTANCE}=${uuid}`] }));
    return (await docker<unknown[]>('GET', `/containers/json?all=1&filters=${filters}`)).body.length;
  };

  before(async () => {
    await removeLabelled(`${LABEL_PROJECT}=${PROJECT}`);
    t = await startTestAgent({ agent: {} });
    ({ agent, client, store, baseGlanceId, stateDir } = t);
  });

  after(async () => {
    await t?.close(PROJECT, committed);
  });

  it('keeps a generated token in state_path/agent.token, readable by its owner only', () => {
    const file = join(stateDir, 'agent.token');
    assert.equal(readFileSync(file, 'utf8').trim(), agent.token);
    assert.match(agent.token, /^[0-9a-f]{64}$/);
    assert.equal(statSync(file).mode & 0o777, 0o600);
  });

  it('reports the runtime healthy', async () => {
    assert.deepEqual(await client.health(), { ok: true, runtime: true });
  });

  it("boots an instance with the flavor's limits and a locked-down container", async () => {
    const uuid = randomUUID();
    const status = await client.createInstance(uuid, spec(baseGlanceId));
    assert.equal(status.power_state, 'running');
    assert.ok(status.ip_address, 'has an address on the bridge');
    const name = `berth-${uuid}`;
    // cgroup v2 (Debian 12's default): memory.max at the container's cgroup root; v1: the memory controller's file.
    const limit = (await execIn(name, ['sh', '-c', 'cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes'])).trim();
    assert.equal(limit, String(96 * 1024 * 1024));
    const { body } = await docker<{ HostConfig: Record<string, unknown>; Config: { Hostname: string } }>('GET', `/containers/${name}/json`);
    assert.equal(body.HostConfig.Privileged, false);
    assert.deepEqual(body.HostConfig.CapDrop, ['ALL']);
    assert.deepEqual(body.HostConfig.SecurityOpt, ['no-new-privileges']);
    assert.equal(body.HostConfig.MemorySwap, 128 * 1024 * 1024);
    assert.equal(body.HostConfig.NanoCpus, 1e9);
    assert.equal(body.HostConfig.PidsLimit, 200);
    assert.equal(body.Config.Hostname, 'it-guest');

    let console = '';
    for (let i = 0; i < 50 && !console.includes('berth-guest: booted it-guest'); i++) {
      console = await client.consoleLog(uuid, 50);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(console, /berth-guest: booted it-guest/);

    assert.equal((await client.createInstance(uuid, spec(baseGlanceId))).power_state, 'running');
    assert.equal(await countContainers(uuid), 1);

    assert.equal((await client.instanceAction(uuid, { action: 'stop' })).power_state, 'stopped');
    assert.equal((await client.instanceAction(uuid, { action: 'start' })).power_state, 'running');
    assert.equal((await client.instanceAction(uuid, { action: 'pause' })).power_state, 'paused');

    await client.deleteInstance(uuid);
    await client.deleteInstance(uuid);
    assert.equal(await client.getInstance(uuid), null);
    assert.equal(await countContainers(uuid), 0);
  });

  it('loads an image the host lacks from the image service, then boots it', async () => {
    // A unique image: commit a container of the test image with a fresh label, save it, drop it.
    const tag = `berth-it/agent-load:${randomUUID().slice(0, 8)}`;
    const made = await docker<{ Id: string }>('POST', `/containers/create?name=berth-it-src-${randomUUID()}`, {
      Image: TEST_IMAGE,
      Labels: { [LABEL_PROJECT]: PROJECT },
    });
    const [repo, version] = tag.split(':');
    const commit = await docker<{ Id: string }>(
      'POST',
      `/commit?container=${made.body.Id}&repo=${encodeURIComponent(repo!)}&tag=${version}&changes=${encodeURIComponent(`LABEL berth.it=${version}`)}`,
    );
    const imageId = commit.body.Id;
    committed.push(imageId);
    const archive = await readBody(await saveImage(tag), 512 * 1024 * 1024);
    await docker('DELETE', `/images/${encodeURIComponent(tag)}?force=1`);
    assert.equal((await docker('GET', `/images/${imageId}/json`, undefined, [404])).status, 404);

    const glanceId = randomUUID();
    store.add(glanceId, { docker_image_id: imageId }, async () => Readable.from([archive]));
    const uuid = randomUUID();
    const before = store.downloads;
    const status = await client.createInstance(uuid, spec(glanceId, { hostname: 'loaded-guest' }));
    assert.equal(status.power_state, 'running');
    assert.equal(status.image_id, glanceId);
    assert.equal(store.downloads, before + 1);
    assert.equal((await docker<{ Id: string }>('GET', `/images/${imageId}/json`)).body.Id, imageId);
    await client.deleteInstance(uuid, { timeout: 0 });
  });

  it('refuses an image whose archive does not hold the promised id, leaving no container', async () => {
    const glanceId = randomUUID();
    store.add(glanceId, { docker_image_id: `sha256:${'e'.repeat(64)}` }, () => saveImage(TEST_IMAGE));
    const uuid = randomUUID();
    await assert.rejects(client.createInstance(uuid, spec(glanceId)), (e: unknown) => (e as { code?: string }).code === 'IMAGE_FETCH_FAILED');
    assert.equal(await countContainers(uuid), 0);
  });
});
