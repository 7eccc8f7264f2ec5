import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { SnapshotTask } from '../../../agent/client/types.js';
import { imageIdsInArchive } from '../../fakes/docker-archive.js';
import { errorCode, startHarness, type AgentHarness } from './harness.js';

describe('agent snapshots', () => {
  let h: AgentHarness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  const queued = (): string => {
    const id = randomUUID();
    h.store.add(id, { status: 'queued', size: null });
    return id;
  };
  const post = (uuid: string, imageId: string) => h.raw('POST', `/v1/instances/${uuid}/snapshot`, { body: JSON.stringify({ image_id: imageId }) });
  const task = async (imageId: string): Promise<SnapshotTask> => ((await h.raw('GET', `/v1/snapshots/${imageId}`)).body as { snapshot: SnapshotTask }).snapshot;
  async function settled(imageId: string): Promise<SnapshotTask> {
    for (let i = 0; i < 200; i++) {
      const t = await task(imageId);
      if (t.state === 'active' || t.state === 'failed') return t;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error('snapshot did not finish');
  }

  it('freezes, commits, thaws, and streams the export into the queued image', async () => {
    const uuid = randomUUID();
    await h.client.createInstance(uuid, h.spec());
    const imageId = queued();
    let release!: () => void;
    h.store.uploadGate = new Promise((r) => {
      release = r;
    });
    const res = await post(uuid, imageId);
    assert.equal(res.status, 202);
    assert.equal((res.body as { snapshot: SnapshotTask }).snapshot.instance_uuid, uuid);
    for (let i = 0; i < 200 && (await task(imageId)).state !== 'uploading'; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal((await task(imageId)).state, 'uploading');
    assert.equal((await h.client.getInstance(uuid))?.power_state, 'running', 'the guest runs again while the upload goes on');
    assert.equal((await post(uuid, imageId)).status, 200, 'a repeat returns the running task');
    release();
    const done = await settled(imageId);
    assert.equal(done.state, 'active');
    const image = await h.store.getImage(imageId);
    assert.equal(image?.status, 'active');
    assert.equal(image?.size, done.bytes_uploaded);
    const ids = await imageIdsInArchive(await h.store.downloadImage(imageId));
    assert.equal(ids.length, 1);
    assert.equal(h.runtime.images.has(ids[0]!), false, 'the committed image does not linger in the runtime');
    assert.equal(h.store.uploads, 1);
    assert.match((await h.raw('GET', '/metrics')).body as string, /^berth_agent_snapshots_total\{result="active"\} 1$/m);
  });

  it('leaves a paused instance paused', async () => {
    const uuid = randomUUID();
    await h.client.createInstance(uuid, h.spec());
    await h.client.instanceAction(uuid, { action: 'pause' });
    const imageId = queued();
    await post(uuid, imageId);
    assert.equal((await settled(imageId)).state, 'active');
    assert.equal((await h.client.getInstance(uuid))?.power_state, 'paused');
  });

  it('fails the task when the store refuses the data, and a repeat tries again', async () => {
    const uuid = randomUUID();
    await h.client.createInstance(uuid, h.spec());
    const imageId = randomUUID();
    h.store.add(imageId, { status: 'active' });
    await post(uuid, imageId);
    const failed = await settled(imageId);
    assert.equal(failed.state, 'failed');
    assert.equal(failed.error?.code, 'IMAGE_UPLOAD_FAILED');
    assert.equal((await h.client.getInstance(uuid))?.power_state, 'running');
    h.store.records.get(imageId)!.status = 'queued';
    assert.equal((await post(uuid, imageId)).status, 202);
    assert.equal((await settled(imageId)).state, 'active');
  });

  it('refuses bad requests with codes', async () => {
    const uuid = randomUUID();
    await h.client.createInstance(uuid, h.spec());
    assert.equal(errorCode((await post(randomUUID(), queued())).body), 'INSTANCE_NOT_FOUND');
    assert.equal(errorCode((await post(uuid, 'not-a-uuid')).body), 'INVALID_INPUT');
    assert.equal(errorCode((await h.raw('POST', `/v1/instances/${uuid}/snapshot`, { body: '[]' })).body), 'INVALID_INPUT');
    assert.equal((await h.raw('POST', `/v1/instances/${uuid}/snapshot`, { body: 'x'.repeat(5000) })).status, 413);
    assert.equal((await h.raw('POST', `/v1/instances/${uuid}/snapshot`, { body: 'a=b', headers: { 'content-type': 'text/plain' } })).status, 415);
    assert.equal(errorCode((await h.raw('GET', '/v1/snapshots/..%2F..%2Fetc')).body), 'INVALID_INPUT');
    const res = await h.raw('GET', `/v1/snapshots/${randomUUID()}`);
    assert.equal(res.status, 404);
    assert.equal(errorCode(res.body), 'SNAPSHOT_NOT_FOUND');
    const shared = queued();
    await post(uuid, shared);
    const other = randomUUID();
    await h.client.createInstance(other, h.spec());
    assert.equal((await post(other, shared)).status, 400);
  });

  it('is reachable through the HTTP client', async () => {
    const uuid = randomUUID();
    await h.client.createInstance(uuid, h.spec());
    const imageId = queued();
    const started = await h.client.snapshotInstance(uuid, imageId);
    assert.equal(started.image_id, imageId);
    assert.equal((await settled(imageId)).state, 'active');
    assert.equal((await h.client.getSnapshot(imageId))?.state, 'active');
    assert.equal(await h.client.getSnapshot(randomUUID()), null);
  });
});
