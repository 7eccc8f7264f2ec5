import { Readable } from 'node:stream';
import { buildDockerArchive } from '../../fakes/docker-archive.js';
import { FakeContainerRuntime } from '../../fakes/container-runtime.js';
import { containerRuntimeConformance } from '../../conformance/container-runtime.js';

const FLAVOR = { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} };

containerRuntimeConformance('fake', async () => {
  const host = 'conformance-host';
  const runtime = new FakeContainerRuntime({ host });
  const boot = await buildDockerArchive('berth/boot:1');
  runtime.images.add(boot.imageId);
  return {
    runtime,
    imageId: boot.imageId,
    archive: async () => {
      const a = await buildDockerArchive('berth/loaded:1');
      return { stream: Readable.from([a.tar]), imageId: a.imageId };
    },
    pullable: async () => {
      const a = await buildDockerArchive('berth/pulled:1');
      runtime.registry.set('registry.test:5000/berth/pulled@sha256:feed', a.imageId);
      return { reference: 'registry.test:5000/berth/pulled@sha256:feed', imageId: a.imageId };
    },
    unknownReference: 'registry.test:5000/berth/absent:latest',
    addForeignContainer: async () => {
      runtime.foreign.push('not-berth');
    },
    host,
    addBerthContainer: async (uuid, owner) => {
      runtime.addBerthContainer(
        { uuid, imageId: boot.imageId, glanceImageId: uuid, projectId: 'conformance', hostname: 'h', flavor: FLAVOR },
        owner ?? undefined,
      );
    },
    cleanup: async () => {
      runtime.containers.clear();
    },
  };
});
