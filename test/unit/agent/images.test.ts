import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ImageRecords } from '../../../agent/image-records.js';
import { ImageCache } from '../../../agent/images.js';
import { BerthError, commonError } from '../../../common/errors.js';
import type { Logger } from '../../../common/log.js';
import { FakeContainerRuntime } from '../../fakes/container-runtime.js';
import { buildDockerArchive } from '../../fakes/docker-archive.js';
import { FakeImageService } from '../../fakes/glance-images.js';

const rejectsWith = (p: Promise<unknown>, code: string, message?: RegExp) =>
  assert.rejects(p, (e: unknown) => e instanceof BerthError && e.code === code && (!message || message.test(e.message)));

describe('ImageCache.ensureImage', () => {
  let runtime: FakeContainerRuntime;
  let store: FakeImageService;
  let cache: ImageCache;
  beforeEach(() => {
    runtime = new FakeContainerRuntime();
    store = new FakeImageService();
    cache = new ImageCache(store, runtime);
  });

  it('loads an image the host lacks and returns its docker image id', async () => {
    const a = await buildDockerArchive('berth/a:1');
    const id = randomUUID();
    store.add(id, { docker_image_id: a.imageId }, a.tar);
    assert.equal(await cache.ensureImage(id), a.imageId);
    assert.equal(runtime.loads, 1);
    assert.equal(await cache.ensureImage(id), a.imageId);
    assert.equal(store.downloads, 1, 'a present image is not fetched again');
  });

  it('goes by digest, not by name: an image this agent loaded from the same Glance image is never downloaded again', async () => {
    const state = mkdtempSync(join(tmpdir(), 'berth-images-'));
    try {
      const a = await buildDockerArchive('berth/a:1');
      const id = randomUUID();
      store.add(id, { docker_image_id: a.imageId }, a.tar);
      await new ImageCache(store, runtime, { records: ImageRecords.at(state) }).ensureImage(id);
      // Another agent process (a restart): the record of the load stands for the verification.
      assert.equal(await new ImageCache(store, runtime, { records: ImageRecords.at(state) }).ensureImage(id), a.imageId);
      assert.equal(store.downloads, 1);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });

  it("fetches a Glance image's own content once even when an image of its docker_image_id is present, and does not take ownership of that image", async () => {
    const state = mkdtempSync(join(tmpdir(), 'berth-images-'));
    try {
      const records = ImageRecords.at(state);
      const cached = new ImageCache(store, runtime, { records });
      const a = await buildDockerArchive('berth/a:1');
      runtime.images.add(a.imageId);
      const id = randomUUID();
      store.add(id, { docker_image_id: a.imageId }, a.tar);
      assert.equal(await cached.ensureImage(id), a.imageId);
      assert.equal(await cached.ensureImage(id), a.imageId);
      assert.equal(store.downloads, 1);
      assert.equal(records.get(a.imageId), undefined, "an image that was on the host before is not this agent's to clean up");
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });

  it("does not lend an image on the host to a Glance image that only names its docker_image_id (another project's private image)", async () => {
    const state = mkdtempSync(join(tmpdir(), 'berth-images-'));
    try {
      const cached = new ImageCache(store, runtime, { records: ImageRecords.at(state) });
      const secret = await buildDockerArchive('berth/secret:1');
      const victim = randomUUID();
      store.add(victim, { docker_image_id: secret.imageId, owner: 'project-a', visibility: 'private' }, secret.tar);
      await cached.ensureImage(victim, 'project-a');
      // Project B's own image, claiming A's content by id, with data of its own.
      const own = await buildDockerArchive('berth/own:1');
      const claim = randomUUID();
      store.add(claim, { docker_image_id: secret.imageId, owner: 'project-b', visibility: 'private' }, own.tar);
      await rejectsWith(cached.ensureImage(claim, 'project-b'), 'IMAGE_FETCH_FAILED', /does not match/);
      await rejectsWith(cached.ensureImage(claim), 'IMAGE_FETCH_FAILED', /does not match/);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });

  it('checks again an image recorded by an agent that did not verify content (a record without `verified`)', async () => {
    const state = mkdtempSync(join(tmpdir(), 'berth-images-'));
    try {
      const secret = await buildDockerArchive('berth/secret:1');
      const own = await buildDockerArchive('berth/own:1');
      runtime.images.add(secret.imageId);
      const claim = randomUUID();
      store.add(claim, { docker_image_id: secret.imageId }, own.tar);
      // What an agent wrote that recorded a load before checking what it loaded.
      writeFileSync(join(state, 'agent-images.json'), JSON.stringify({ [secret.imageId]: { glanceIds: [claim], loadedAt: 1, lastUsedAt: 1 } }));
      await rejectsWith(new ImageCache(store, runtime, { records: ImageRecords.at(state) }).ensureImage(claim), 'IMAGE_FETCH_FAILED', /does not match/);
    } finally {
      rmSync(state, { recursive: true, force: true });
    }
  });

  it('lets a project use an image only when its owner and visibility let that project read it', async () => {
    const a = await buildDockerArchive('berth/a:1');
    const image = (props: Record<string, unknown>): string => {
      const id = randomUUID();
      store.add(id, { docker_image_id: a.imageId, owner: 'owner', ...props }, a.tar);
      return id;
    };
    const priv = image({ visibility: 'private' });
    const pub = image({ visibility: 'public' });
    const community = image({ visibility: 'community' });
    const shared = image({ visibility: 'shared' });
    assert.equal(await cache.ensureImage(priv, 'owner'), a.imageId);
    await rejectsWith(cache.ensureImage(priv, 'other'), 'IMAGE_NOT_FOUND');
    assert.equal(await cache.ensureImage(pub, 'other'), a.imageId);
    assert.equal(await cache.ensureImage(community, 'other'), a.imageId);
    // Without a members call, a shared image is its owner's only; with it, its members' too.
    await rejectsWith(cache.ensureImage(shared, 'member'), 'IMAGE_NOT_FOUND');
    store.getMember = async (id, member) => (id === shared && member === 'member' ? { status: 'accepted' } : null);
    assert.equal(await cache.ensureImage(shared, 'member'), a.imageId);
    await rejectsWith(cache.ensureImage(shared, 'other'), 'IMAGE_NOT_FOUND');
    assert.equal(await cache.ensureImage(shared, 'owner'), a.imageId);
  });

  it('shares one download between concurrent calls', async () => {
    const a = await buildDockerArchive('berth/a:1');
    const id = randomUUID();
    store.add(id, { docker_image_id: a.imageId }, a.tar);
    let open!: () => void;
    store.gate = new Promise((r) => {
      open = r;
    });
    const calls = [cache.ensureImage(id), cache.ensureImage(id), cache.ensureImage(id)];
    await new Promise((r) => setImmediate(r));
    open();
    assert.deepEqual(await Promise.all(calls), [a.imageId, a.imageId, a.imageId]);
    assert.equal(store.downloads, 1);
    assert.equal(runtime.loads, 1);
  });

  it('answers IMAGE_NOT_FOUND for an image the store does not have', async () => {
    await rejectsWith(cache.ensureImage(randomUUID()), 'IMAGE_NOT_FOUND');
  });

  it('refuses images that are not active, not docker, or lack docker_image_id', async () => {
    const a = await buildDockerArchive('berth/a:1');
    const queued = randomUUID();
    store.add(queued, { status: 'queued', docker_image_id: a.imageId }, a.tar);
    const bare = randomUUID();
    store.add(bare, { container_format: 'bare', docker_image_id: a.imageId }, a.tar);
    const noId = randomUUID();
    store.add(noId, {}, a.tar);
    const shortId = randomUUID();
    store.add(shortId, { docker_image_id: 'sha256:abc' }, a.tar);
    await rejectsWith(cache.ensureImage(queued), 'IMAGE_FETCH_FAILED', /status is queued/);
    await rejectsWith(cache.ensureImage(bare), 'IMAGE_FETCH_FAILED', /container_format is bare/);
    await rejectsWith(cache.ensureImage(noId), 'IMAGE_FETCH_FAILED', /docker_image_id/);
    await rejectsWith(cache.ensureImage(shortId), 'IMAGE_FETCH_FAILED', /docker_image_id/);
    assert.equal(store.downloads, 0);
  });

  it('fails when the loaded archive does not hold the promised image id', async () => {
    const a = await buildDockerArchive('berth/a:1');
    const other = await buildDockerArchive('berth/b:1');
    const id = randomUUID();
    store.add(id, { docker_image_id: other.imageId }, a.tar);
    await rejectsWith(cache.ensureImage(id), 'IMAGE_FETCH_FAILED', /does not match/);
  });

  it('fails with IMAGE_FETCH_FAILED on an archive that is not one', async () => {
    const a = await buildDockerArchive('berth/a:1');
    const id = randomUUID();
    store.add(id, { docker_image_id: a.imageId }, Buffer.from('not a tar at all'));
    await rejectsWith(cache.ensureImage(id), 'IMAGE_FETCH_FAILED');
  });

  it('keeps an unreachable store retryable', async () => {
    store.getImage = async () => {
      throw commonError('SERVICE_UNREACHABLE', 'image service unreachable');
    };
    await assert.rejects(cache.ensureImage(randomUUID()), (e: unknown) => e instanceof BerthError && e.code === 'SERVICE_UNREACHABLE' && e.retryable);
  });
});

describe('ImageCache with [agent] image_registry (pull through the image service)', () => {
  const REGISTRY = 'images.test:5050';
  const manifest = `sha256:${'ab'.repeat(32)}`;
  let runtime: FakeContainerRuntime;
  let store: FakeImageService;
  let fetched: string[];
  let warnings: string[];
  let cache: ImageCache;
  beforeEach(() => {
    runtime = new FakeContainerRuntime();
    store = new FakeImageService();
    fetched = [];
    warnings = [];
    const log = {
      warn: (_o: unknown, msg: string) => {
        warnings.push(msg);
      },
    } as unknown as Logger;
    cache = new ImageCache(store, runtime, {
      registry: REGISTRY,
      log,
      events: {
        cacheHit: () => undefined,
        fetched: (r) => {
          fetched.push(r);
        },
      },
    });
  });

  it('pulls an imported image by its served manifest digest, without downloading the archive', async () => {
    const a = await buildDockerArchive('berth/a:1');
    const id = randomUUID();
    store.add(id, { docker_image_id: a.imageId, berth_manifest_digest: manifest }, a.tar);
    runtime.registry.set(`${REGISTRY}/berth/${id}@${manifest}`, a.imageId);
    assert.equal(await cache.ensureImage(id), a.imageId);
    assert.deepEqual([runtime.pulls, runtime.loads, store.downloads], [1, 0, 0]);
    assert.deepEqual(fetched, ['pulled']);
  });

  it('loads the archive for an uploaded image (no manifest digest), and after a failed pull, with a warning', async () => {
    const a = await buildDockerArchive('berth/a:1');
    const uploaded = randomUUID();
    store.add(uploaded, { docker_image_id: a.imageId }, a.tar);
    await cache.ensureImage(uploaded);
    assert.deepEqual([runtime.pulls, runtime.loads], [0, 1]);
    assert.deepEqual(warnings, []);

    const b = await buildDockerArchive('berth/b:1');
    const unservable = randomUUID();
    store.add(unservable, { docker_image_id: b.imageId, berth_manifest_digest: manifest }, b.tar);
    assert.equal(await cache.ensureImage(unservable), b.imageId);
    assert.deepEqual([runtime.pulls, runtime.loads], [0, 2]);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /loading the image archive instead/);
    assert.deepEqual(fetched, ['loaded', 'loaded']);
  });

  it('fails a pull that brings other content than docker_image_id, and leaves the engine error retryable', async () => {
    const a = await buildDockerArchive('berth/a:1');
    const other = await buildDockerArchive('berth/other:1');
    const id = randomUUID();
    store.add(id, { docker_image_id: a.imageId, berth_manifest_digest: manifest }, a.tar);
    runtime.registry.set(`${REGISTRY}/berth/${id}@${manifest}`, other.imageId);
    await rejectsWith(cache.ensureImage(id), 'IMAGE_FETCH_FAILED', /pulled but its content does not match/);
    runtime.unavailable = true;
    await rejectsWith(cache.ensureImage(id), 'RUNTIME_UNAVAILABLE');
    assert.equal(store.downloads, 0);
  });
});
