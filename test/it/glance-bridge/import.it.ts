import assert from 'node:assert/strict';
import { createImageClient } from '../../../glance-bridge/client/http.js';
import type { ImageService } from '../../../glance-bridge/client/types.js';
import { buildImage } from '../../fakes/image-builder.js';
import {
  BUSYBOX,
  CountingRegistryClient,
  REGISTRY,
  deleteManifest,
  dockerHasImage,
  dockerLoad,
  dockerRemoveImage,
  pushImage,
  realRegistryClient,
  startTestService,
} from './helpers.js';

describe('glance-bridge import from the real registry into the real dockerd', () => {
  let registry: CountingRegistryClient;
  let client: ImageService;
  let cleanup: () => Promise<void>;

  before(async () => {
    registry = new CountingRegistryClient(realRegistryClient());
    const started = await startTestService(registry);
    cleanup = started.cleanup;
    client = createImageClient({ url: started.service.url, pollIntervalMs: 50 });
  });
  after(async () => {
    await cleanup();
  });

  it('imports the test image: active, docker/raw, with docker_image, docker_digest and docker_image_id', async () => {
    const manifest = (await (
      await fetch(`http://${REGISTRY}/v2/berth/busybox/manifests/latest`, {
        headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      })
    ).json()) as { config: { digest: string } };
    const image = await client.importImage(BUSYBOX, { name: 'busybox' });
    assert.equal(image.status, 'active');
    assert.equal(image.container_format, 'docker');
    assert.equal(image.disk_format, 'raw');
    assert.equal(image.docker_image, BUSYBOX);
    assert.match(image.docker_digest ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.equal(image.docker_image_id, manifest.config.digest);
  });

  it('returns the same image for a second import of the reference, fetching no blobs', async () => {
    const first = await client.importImage(BUSYBOX);
    const fetched = registry.blobFetches;
    const again = await client.importImage(BUSYBOX);
    assert.equal(again.id, first.id);
    assert.equal(registry.blobFetches, fetched);
  });

  it('serves an archive docker load accepts, loading as docker_image_id', async () => {
    const [image] = await client.listImages({ docker_digest: (await client.importImage(BUSYBOX)).docker_digest! });
    assert.equal(await dockerLoad(await client.downloadImage(image!.id)), image!.docker_image_id);
  });

  it('loads an image dockerd has never seen (gzip layers read from the archive as stored)', async () => {
    const built = await buildImage();
    await pushImage('berth/it-unique', 'latest', built);
    const image = await client.importImage(`docker://${REGISTRY}/berth/it-unique:latest`);
    assert.equal(image.docker_image_id, built.config.descriptor.digest);
    assert.equal(await dockerHasImage(image.docker_image_id!), false);
    try {
      assert.equal(await dockerLoad(await client.downloadImage(image.id)), image.docker_image_id);
      assert.equal(await dockerHasImage(image.docker_image_id!), true);
    } finally {
      await dockerRemoveImage(image.docker_image_id!);
      await deleteManifest('berth/it-unique', built.manifestDigest);
    }
  });
});
