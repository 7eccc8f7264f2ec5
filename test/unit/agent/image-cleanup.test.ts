import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageCleaner } from '../../../agent/image-cleanup.js';
import { ImageRecords } from '../../../agent/image-records.js';
import { ImageCache } from '../../../agent/images.js';
import { silentLogger } from '../../../common/log.js';
import { FakeContainerRuntime } from '../../fakes/container-runtime.js';
import { buildDockerArchive } from '../../fakes/docker-archive.js';
import { FakeImageService } from '../../fakes/glance-images.js';

const HOUR = 3600_000;
const FLAVOR = { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} };

describe('image cache clean-up', () => {
  let dir: string;
  let runtime: FakeContainerRuntime;
  let store: FakeImageService;
  let records: ImageRecords;
  let cache: ImageCache;
  let cleaner: ImageCleaner;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-image-cleanup-'));
    runtime = new FakeContainerRuntime();
    store = new FakeImageService();
    records = ImageRecords.at(dir);
    cache = new ImageCache(store, runtime, { records });
    cleaner = new ImageCleaner({ runtime, records, forgetGlanceId: (g) => cache.forget(g), maxUnusedMs: HOUR, log: silentLogger() });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function storeImage(name: string): Promise<{ glanceId: string; imageId: string }> {
    const a = await buildDockerArchive(name);
    const glanceId = randomUUID();
    store.add(glanceId, { docker_image_id: a.imageId }, a.tar);
    return { glanceId, imageId: a.imageId };
  }

  it('removes an image it loaded once unused for long enough, and fetches it again when asked', async () => {
    const { glanceId, imageId } = await storeImage('berth/a:1');
    await cache.ensureImage(glanceId);
    assert.deepEqual(await cleaner.clean(Date.now() + HOUR / 2), []);
    assert.deepEqual(await cleaner.clean(Date.now() + 2 * HOUR), [glanceId]);
    assert.equal(await runtime.hasImage(imageId), false);
    await cache.ensureImage(glanceId);
    assert.equal(await runtime.hasImage(imageId), true);
    assert.equal(store.downloads, 2);
  });

  it('never removes an image a container uses, in any state', async () => {
    const { glanceId, imageId } = await storeImage('berth/b:1');
    await cache.ensureImage(glanceId);
    const uuid = randomUUID();
    await runtime.createContainer({ uuid, imageId, glanceImageId: glanceId, projectId: 'p', hostname: 'h', flavor: FLAVOR });
    await runtime.stop(uuid);
    assert.deepEqual(await cleaner.clean(Date.now() + 10 * HOUR), []);
    assert.equal(await runtime.hasImage(imageId), true);
    // In use at that pass, so unused only from then on.
    await runtime.remove(uuid);
    assert.deepEqual(await cleaner.clean(Date.now() + 10 * HOUR + HOUR / 2), []);
    assert.deepEqual(await cleaner.clean(Date.now() + 12 * HOUR), [glanceId]);
  });

  it('never removes an image it did not load', async () => {
    const { glanceId, imageId } = await storeImage('berth/c:1');
    runtime.images.add(imageId);
    await cache.ensureImage(glanceId);
    assert.deepEqual(await cleaner.clean(Date.now() + 100 * HOUR), []);
    assert.equal(await runtime.hasImage(imageId), true);
  });

  it('keeps its record across restarts, and reads a damaged file as empty', async () => {
    const { glanceId, imageId } = await storeImage('berth/d:1');
    await cache.ensureImage(glanceId);
    const reopened = ImageRecords.at(dir);
    assert.deepEqual(reopened.get(imageId)?.glanceIds, [glanceId]);
    const again = new ImageCleaner({ runtime, records: reopened, forgetGlanceId: () => undefined, maxUnusedMs: HOUR, log: silentLogger() });
    assert.deepEqual(await again.clean(Date.now() + 2 * HOUR), [glanceId]);
    writeFileSync(join(dir, 'agent-images.json'), '{not json');
    assert.deepEqual(ImageRecords.at(dir).entries(), []);
  });

  it('keeps every image when the policy is off', async () => {
    const { glanceId, imageId } = await storeImage('berth/e:1');
    await cache.ensureImage(glanceId);
    const off = new ImageCleaner({ runtime, records, forgetGlanceId: () => undefined, maxUnusedMs: 0, log: silentLogger() });
    assert.deepEqual(await off.clean(Date.now() + 1000 * HOUR), []);
    assert.equal(await runtime.hasImage(imageId), true);
  });
});
