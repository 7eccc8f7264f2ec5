import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InstanceSpec, SnapshotTask } from '../../../agent/client/types.js';
import { startAgent, type RunningAgent } from '../../../agent/main.js';
import { projectNetworkName } from '../../../agent/network/project-networks.js';
import { LABEL_PROJECT } from '../../../agent/runtime/types.js';
import { parseEndpoint, requestJson } from '../../../common/http-client.js';
import { silentLogger } from '../../../common/log.js';
import { loadConfig } from '../../../conf/load.js';
import { imageIdsInArchive } from '../../fakes/docker-archive.js';
import { FakeImageService } from '../../fakes/glance-images.js';
import { DOCKER_URL, TEST_IMAGE, docker, execIn, imageIdOf, removeLabelled, removeNetworks, saveImage } from './docker-helpers.js';

const PROJECT = `berth-it-snap-${randomUUID().slice(0, 8)}`;

/** A snapshot taken on the real dockerd boots again with the guest's changes. */
describe('berth-agent snapshot on dockerd', function () {
  this.timeout(120_000);
  const store = new FakeImageService();
  let stateDir: string;
  let agent: RunningAgent;
  let snapshotImageId: string | undefined;

  const spec = (image_id: string): InstanceSpec => ({
    image_id,
    flavor: { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} },
    name: 'snap-vm',
    hostname: 'snap-guest',
    project_id: PROJECT,
    user_id: 'tester',
    metadata: {},
    user_data: null,
    key_data: null,
    fixed_ip: null,
  });
  const call = <T>(method: string, path: string, body?: unknown) =>
    requestJson<T>(parseEndpoint(agent.url), { method, path, body, headers: { authorization: `Bearer ${agent.token}` } }, 'agent');

  before(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'berth-agent-snap-it-'));
    const config = loadConfig({
      env: {},
      overrides: { DEFAULT: { state_path: stateDir }, agent: { listen: '127.0.0.1:0', token: '' }, docker: { host_url: DOCKER_URL, stop_timeout: 1 } },
    });
    agent = await startAgent(config, { images: store, log: silentLogger() });
  });

  after(async () => {
    await agent?.close();
    await removeLabelled(`${LABEL_PROJECT}=${PROJECT}`);
    await removeNetworks([projectNetworkName(PROJECT)]);
    if (snapshotImageId) await docker('DELETE', `/images/${snapshotImageId}?force=1`, undefined, [404, 409]);
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("pauses, commits, unpauses and uploads an image that boots with the guest's files", async () => {
    const baseId = randomUUID();
    store.add(baseId, { docker_image_id: await imageIdOf(TEST_IMAGE) }, () => saveImage(TEST_IMAGE));
    const uuid = randomUUID();
    await call('PUT', `/v1/instances/${uuid}`, spec(baseId));
    await execIn(`berth-${uuid}`, ['sh', '-c', `echo ${uuid} > /snapshot-marker`]);

    const glanceId = randomUUID();
    store.add(glanceId, { status: 'queued', size: null });
    const started = await call<{ snapshot: SnapshotTask }>('POST', `/v1/instances/${uuid}/snapshot`, { image_id: glanceId });
    assert.equal(started.status, 202);
    let task = started.body.snapshot;
    for (let i = 0; i < 600 && task.state !== 'active' && task.state !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      task = (await call<{ snapshot: SnapshotTask }>('GET', `/v1/snapshots/${glanceId}`)).body.snapshot;
    }
    assert.equal(task.state, 'active', JSON.stringify(task.error));
    assert.ok(task.bytes_uploaded > 0);
    const running = await call<{ instance: { power_state: string } }>('GET', `/v1/instances/${uuid}`);
    assert.equal(running.body.instance.power_state, 'running');

    const [imageId] = await imageIdsInArchive(await store.downloadImage(glanceId));
    snapshotImageId = imageId;
    assert.equal((await docker('GET', `/images/${imageId}/json`, undefined, [404])).status, 404, 'the commit is not left in dockerd');
    store.records.get(glanceId)!.docker_image_id = imageId;
    const clone = randomUUID();
    await call('PUT', `/v1/instances/${clone}`, spec(glanceId));
    assert.equal((await execIn(`berth-${clone}`, ['cat', '/snapshot-marker'])).trim(), uuid);
  });
});
