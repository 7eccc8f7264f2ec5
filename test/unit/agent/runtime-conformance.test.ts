import { Readable } from 'node:stream';
import { buildDockerArchive } from '../../fakes/docker-archive.js';
import { FakeContainerRuntime } from '../../fakes/container-runtime.js';
import { containerRuntimeConformance } from '../../conformance/container-runtime.js';

containerRuntimeConformance('fake', async () => {
  const runtime = new FakeContainerRuntime();
  const boot = await buildDockerArchive('berth/boot:1');
  runtime.images.add(boot.imageId);
  return {
    runtime,
    imageId: boot.imageId,
    archive: async () => {
      const a = await buildDockerArchive('berth/loaded:1');
      return { stream: Readable.from([a.tar]), imageId: a.imageId };
    },
    addForeignContainer: async () => { runtime.foreign.push('not-berth'); },
    cleanup: async () => { runtime.containers.clear(); },
  };
});
