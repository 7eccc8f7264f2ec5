import { parseCidr } from '../../../agent/network/ipv4.js';
import { ProjectNetworks } from '../../../agent/network/project-networks.js';
import { POOL, PREFIX, projectNetworksConformance } from '../../conformance/project-networks.js';
import { FakeContainerRuntime } from '../../fakes/container-runtime.js';
import { FakeProjectNetworks } from '../../fakes/project-networks.js';

projectNetworksConformance('fake', async () => ({
  networks: new FakeProjectNetworks(parseCidr(POOL)!, PREFIX),
  occupy: async () => {},
  vacate: async () => {},
  cleanup: async () => {},
}));

/** The real ProjectNetworks over the fake container runtime: instances are its containers. */
projectNetworksConformance('ProjectNetworks over the fake container runtime', async () => {
  const runtime = new FakeContainerRuntime();
  runtime.images.add('sha256:conformance');
  const flavor = { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} };
  return {
    networks: new ProjectNetworks(runtime, parseCidr(POOL)!, PREFIX),
    occupy: async (uuid, projectId, n) => {
      await runtime.createContainer({ uuid, imageId: 'sha256:conformance', glanceImageId: 'g', projectId, hostname: 'vm', flavor, network: n.net });
    },
    vacate: async (uuid) => {
      await runtime.remove(uuid);
    },
    cleanup: async () => {},
  };
});
