import { randomUUID } from 'node:crypto';
import { createImageClient } from '../../../glance-bridge/client/http.js';
import { imageServiceConformance } from '../../conformance/image-service.js';
import { buildDockerArchive } from '../../fakes/docker-archive.js';
import { FakeImageService } from '../../fakes/glance-images.js';
import { buildImage } from '../../fakes/image-builder.js';
import { inProcessAgent } from '../../support/in-process.js';
import { call, startApiServer } from './api-server.js';
import { REPO, createHarness } from './harness.js';

imageServiceConformance('fake', async () => {
  const images = new FakeImageService();
  return {
    images,
    addMember: async (id, member) => {
      images.addMember(id, member);
    },
    importable: async () => {
      const source = `docker://registry.test:5000/team/app:v${randomUUID().slice(0, 8)}`;
      const digest = `sha256:${randomUUID().replace(/-/g, '').padEnd(64, '0')}`;
      const archive = await buildDockerArchive(source, source);
      images.importable.set(source, { digest, docker_image_id: archive.imageId, file: archive.tar });
      return { source, digest };
    },
    unimportable: 'docker://registry.test:5000/team/app:absent',
    cleanup: async () => {
      images.records.clear();
    },
  };
});

/** The HTTP client on the image service's app over a SQLite store and the fake registry. */
imageServiceConformance('HTTP client on the image service app', async () => {
  const h = await createHarness();
  const server = await startApiServer(h);
  return {
    images: createImageClient({ url: server.base, pollIntervalMs: 20, agent: inProcessAgent }),
    addMember: async (id, member) => {
      const res = await call(server.base, 'POST', `/v2/images/${id}/members`, { member });
      if (res.status !== 200) throw new Error(`adding member ${member}: HTTP ${res.status} ${res.bytes.toString()}`);
    },
    importable: async () => {
      const image = await buildImage();
      const tag = `v${randomUUID().slice(0, 8)}`;
      h.registry.addImage(REPO, tag, image);
      return { source: `docker://${REPO.registry}/${REPO.repository}:${tag}`, digest: image.manifestDigest };
    },
    unimportable: `docker://${REPO.registry}/${REPO.repository}:absent`,
    cleanup: async () => {
      await server.close();
      await h.close();
    },
  };
});
