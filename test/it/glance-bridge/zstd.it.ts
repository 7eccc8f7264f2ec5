import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createImageClient } from '../../../glance-bridge/client/http.js';
import type { ImageService } from '../../../glance-bridge/client/types.js';
import { buildImage } from '../../fakes/image-builder.js';
import { REGISTRY, deleteManifest, dockerHasImage, dockerLoad, dockerRemoveImage, pushImage, realRegistryClient, startTestService } from './helpers.js';

describe('glance-bridge zstd layers from the real registry into dockerd 20.10', () => {
  let client: ImageService;
  let cleanup: () => Promise<void>;

  before(async () => {
    const started = await startTestService(realRegistryClient());
    cleanup = started.cleanup;
    client = createImageClient({ url: started.service.url, pollIntervalMs: 50 });
  });
  after(async () => {
    await cleanup?.();
  });

  it('imports an OCI image with a zstd layer and serves an archive dockerd loads as the config digest', async () => {
    // Unique content, so dockerd has never seen this image and must read every layer from the archive.
    const built = await buildImage({
      oci: true,
      compression: ['gzip', 'zstd'],
      layers: [{ 'etc/berth-gzip': randomBytes(8).toString('hex') }, { 'srv/zstd.bin': randomBytes(64 * 1024) }],
    });
    assert.equal(built.layers[1]!.descriptor.mediaType, 'application/vnd.oci.image.layer.v1.tar+zstd');
    await pushImage('berth/it-zstd', 'latest', built);
    let loaded: string | null = null;
    try {
      const image = await client.importImage(`docker://${REGISTRY}/berth/it-zstd:latest`);
      assert.equal(image.status, 'active');
      assert.equal(image.docker_image_id, built.config.descriptor.digest);
      assert.equal(await dockerHasImage(image.docker_image_id!), false);
      loaded = await dockerLoad(await client.downloadImage(image.id));
      assert.equal(loaded, image.docker_image_id);
      assert.equal(await dockerHasImage(loaded), true);
    } finally {
      if (loaded) await dockerRemoveImage(loaded);
      await deleteManifest('berth/it-zstd', built.manifestDigest);
    }
  });
});
