import type { DockerApi } from './docker-api.js';
import { LABEL_PROJECT, type NetworkInfo, type NetworkSpec } from './types.js';

interface DockerNetwork {
  Name: string;
  Labels?: Record<string, string> | null;
  IPAM?: { Config?: Array<{ Subnet?: string }> | null };
}

interface DockerContainerSummary {
  NetworkSettings?: { Networks?: Record<string, { IPAddress?: string; IPAMConfig?: { IPv4Address?: string } | null }> | null };
}

/** The network operations of the ContainerRuntime on the Docker Engine API. */
export class DockerNetworks {
  constructor(private readonly api: DockerApi) {}

  async list(): Promise<NetworkInfo[]> {
    const res = await this.api.json<DockerNetwork[]>({ path: '/networks', what: 'list networks' });
    return (res.body ?? []).map((n) => ({
      name: n.Name,
      projectId: n.Labels?.[LABEL_PROJECT] ?? null,
      subnets: (n.IPAM?.Config ?? []).map((c) => c.Subnet).filter((s): s is string => typeof s === 'string' && s.includes('.')),
    }));
  }

  async create(spec: NetworkSpec): Promise<boolean> {
    const res = await this.api.json<unknown>({
      method: 'POST', path: '/networks/create', accept: [403, 409], what: 'create a project network',
      body: {
        Name: spec.name,
        // Without it Docker happily makes a second network of the same name.
        CheckDuplicate: true,
        Driver: 'bridge',
        IPAM: { Driver: 'default', Config: [{ Subnet: spec.subnet, Gateway: spec.gateway }] },
        Labels: { [LABEL_PROJECT]: spec.projectId },
      },
    });
    // 409: the name is taken; 403: "Pool overlaps with other one on this address space".
    return res.status < 300;
  }

  async remove(name: string): Promise<boolean> {
    if ((await this.members(name)).length > 0) return false;
    const res = await this.api.json<unknown>({ method: 'DELETE', path: `/networks/${encodeURIComponent(name)}`, accept: [403, 404, 409], what: 'remove a project network' });
    return res.status < 300 || res.status === 404;
  }

  async addresses(name: string): Promise<string[]> {
    const out: string[] = [];
    for (const c of await this.members(name)) {
      const ep = c.NetworkSettings?.Networks?.[name];
      // A stopped container holds no address yet still owns the one it is configured to take.
      const ip = ep?.IPAMConfig?.IPv4Address || ep?.IPAddress;
      if (ip) out.push(ip);
    }
    return out;
  }

  /** Containers in any state attached to the network; Docker's own inspect lists running ones only. */
  private async members(name: string): Promise<DockerContainerSummary[]> {
    const res = await this.api.json<DockerContainerSummary[]>({
      path: '/containers/json', query: { all: 1, filters: JSON.stringify({ network: [name] }) }, what: 'list a network\'s containers',
    });
    return res.body ?? [];
  }
}
