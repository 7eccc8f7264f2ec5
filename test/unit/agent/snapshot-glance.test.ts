import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { SnapshotTask } from '../../../agent/client/types.js';
import type { GlanceImage } from '../../../glance-bridge/client/types.js';
import { imageIdsInArchive } from '../../fakes/docker-archive.js';
import { startHarness, type AgentHarness } from './harness.js';

/** A snapshot into a plain Glance (nova mode): Glance does not read docker_image_id from the archive. */
describe('agent snapshots into a plain Glance', () => {
  let h: AgentHarness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  /** Snapshots instance into a queued image made with `fields`; the patches the agent sent and the image's archive id. */
  async function snapshotInto(fields: Partial<GlanceImage>): Promise<{ patched: Record<string, string>[]; imageId: string; loadedId: string }> {
    const patched: Record<string, string>[] = [];
    Object.assign(h.store, {
      setFormats: async (id: string, formats: Record<string, string>): Promise<GlanceImage> => {
        patched.push(formats);
        return Object.assign(h.store.records.get(id)!, formats);
      },
      setProperties: async (id: string, props: Record<string, string>): Promise<GlanceImage> => {
        patched.push(props);
        return Object.assign(h.store.records.get(id)!, props);
      },
    });
    const uuid = randomUUID();
    await h.client.createInstance(uuid, h.spec());
    const imageId = randomUUID();
    h.store.add(imageId, { status: 'queued', size: null, container_format: null, disk_format: null, ...fields });
    assert.equal((await h.raw('POST', `/v1/instances/${uuid}/snapshot`, { body: JSON.stringify({ image_id: imageId }) })).status, 202);
    let task: SnapshotTask | undefined;
    for (let i = 0; i < 200; i++) {
      task = ((await h.raw('GET', `/v1/snapshots/${imageId}`)).body as { snapshot: SnapshotTask }).snapshot;
      if (task.state === 'active' || task.state === 'failed') break;
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(task?.state, 'active', JSON.stringify(task));
    const [loadedId] = await imageIdsInArchive(await h.store.downloadImage(imageId));
    return { patched, imageId, loadedId: loadedId! };
  }

  it('sets docker/raw on the formatless image nova made, and records the committed image id as docker_image_id', async () => {
    const { patched, imageId, loadedId } = await snapshotInto({});
    assert.deepEqual(patched, [{ container_format: 'docker', disk_format: 'raw' }, { docker_image_id: loadedId }]);
    assert.equal((await h.store.getImage(imageId))?.docker_image_id, loadedId);
  });

  it("replaces the docker_image_id nova copied from the instance's base image with the snapshot's own", async () => {
    // nova's snapshot image inherits the base image's properties; booting it must fetch the snapshot, not the base.
    const base = `sha256:${'b'.repeat(64)}`;
    const { patched, imageId, loadedId } = await snapshotInto({ docker_image_id: base });
    assert.notEqual(loadedId, base);
    assert.deepEqual(patched.at(-1), { docker_image_id: loadedId });
    assert.equal((await h.store.getImage(imageId))?.docker_image_id, loadedId);
  });
});
