import { parseCidr } from '../../../agent/network/ipv4.js';
import { ProjectNetworks } from '../../../agent/network/project-networks.js';
import { DockerRuntime } from '../../../agent/runtime/docker.js';
import type { ContainerRuntime } from '../../../agent/runtime/types.js';
import { POOL, PREFIX, projectNetworksConformance } from '../../conformance/project-networks.js';
import { API_VERSION, DOCKER_URL, TEST_IMAGE, imageIdOf, removeNetworks } from './docker-helpers.js';

/**
 * The real ProjectNetworks on the real dockerd (Docker networks, containers created on them). The
 * engine is shared, so the runtime it is given sees only this run's project networks (and the
 * engine's own): a prune never touches another Berth's.
 */
projectNetworksConformance('ProjectNetworks on dockerd', async (prefix) => {
  const runtime = new DockerRuntime({ hostUrl: DOCKER_URL, apiVersion: API_VERSION, host: `conformance-${prefix}`, networkAttach: 'engine' });
  const view = new Proxy(runtime, {
    get(target, key) {
      if (key === 'listNetworks') {
        return async () => (await target.listNetworks()).filter((n) => n.projectId === null || n.projectId.startsWith(prefix));
      }
      const value = Reflect.get(target, key) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  }) as ContainerRuntime;
  const imageId = await imageIdOf(TEST_IMAGE);
  const flavor = { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} };
  const instances = new Set<string>();
  return {
    networks: new ProjectNetworks(view, parseCidr(POOL)!, PREFIX),
    occupy: async (uuid, projectId, n) => {
      instances.add(uuid);
      await runtime.createContainer({ uuid, imageId, glanceImageId: 'conformance', projectId, hostname: 'vm', flavor, network: n.net });
    },
    vacate: async (uuid) => {
      await runtime.remove(uuid, 0);
      instances.delete(uuid);
    },
    cleanup: async () => {
      for (const uuid of instances) await runtime.remove(uuid, 0).catch(() => undefined);
      const ours = (await view.listNetworks()).filter((n) => n.projectId !== null);
      await removeNetworks(ours.map((n) => n.name));
    },
  };
});
