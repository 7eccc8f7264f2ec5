import type { FlavorSpec } from '../client/types.js';
import { agentError, instanceNotFound } from '../errors.js';
import type { DockerApi } from './docker-api.js';
import { flavorLimits } from './limits.js';

/**
 * Applies a flavor's cgroup limits to an existing container in place (Engine API
 * `POST /containers/{id}/update`): memory and memory+swap, CPU shares, pids, and the CPU bound
 * (NanoCpus, or CpuQuota/CpuPeriod from nova's quota extra specs). The guest keeps running. Docker
 * cannot switch a container between a NanoCpus bound and a quota/period bound (it refuses the
 * update): that case is INVALID_INPUT naming both, and the container is left as it was.
 */
export async function updateContainerLimits(api: DockerApi, name: string, uuid: string, flavor: FlavorSpec): Promise<void> {
  const limits = flavorLimits(flavor);
  const res = await api.json<unknown>({
    method: 'POST',
    path: `/containers/${name}/update`,
    body: limits,
    accept: [400, 404, 409],
    what: "update the container's limits",
  });
  if (res.status === 404) throw instanceNotFound(uuid);
  if (res.status === 400 || res.status === 409) {
    const conflict = /conflicting options|cannot be updated/i.test(res.message);
    throw agentError(
      conflict ? 'INVALID_INPUT' : 'RUNTIME_ERROR',
      conflict
        ? `instance ${uuid} cannot move between a vCPU bound and a quota:cpu_quota/cpu_period bound in place`
        : `container runtime refused the new limits of instance ${uuid} (HTTP ${res.status})`,
      { uuid, field: 'flavor' },
      new Error(res.message),
    );
  }
}
