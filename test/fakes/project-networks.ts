import { invalidInput } from '../../common/errors.js';
import { agentError } from '../../agent/errors.js';
import { formatCidr, gatewayOf, instanceAddresses, isInstanceAddress, macFor, splitPool, type Cidr } from '../../agent/network/ipv4.js';
import { projectNetworkName, type InstanceNetwork, type ProjectNetwork, type ProjectNetworking } from '../../agent/network/project-networks.js';

/**
 * ProjectNetworking in memory: subnets carved in order from the pool, addresses held per project.
 * An address is taken when `use` starts and is the instance's once it succeeds; a failed `use`
 * or a `release` frees it. It passes test/conformance/project-networks.ts with the real one.
 */
export class FakeProjectNetworks implements ProjectNetworking {
  private readonly nets = new Map<string, { subnet: Cidr; held: Set<string> }>();
  private readonly busy = new Map<string, number>();

  constructor(
    private readonly pool: Cidr,
    private readonly prefix: number,
  ) {}

  async withAddress<T>(projectId: string, fixedIp: string | null, use: (n: InstanceNetwork) => Promise<T>): Promise<T> {
    const net = this.networkOf(projectId);
    const ip = this.pick(net.subnet, net.held, fixedIp);
    net.held.add(ip);
    this.busy.set(projectId, (this.busy.get(projectId) ?? 0) + 1);
    try {
      return await use({
        net: { name: projectNetworkName(projectId), ipv4: ip, macAddress: macFor(ip) },
        prefix: net.subnet.prefix,
        gateway: gatewayOf(net.subnet),
      });
    } catch (err) {
      net.held.delete(ip);
      throw err;
    } finally {
      this.busy.set(projectId, this.busy.get(projectId)! - 1);
    }
  }

  release(projectId: string, ip: string | null): void {
    if (ip) this.nets.get(projectId)?.held.delete(ip);
  }

  async list(): Promise<ProjectNetwork[]> {
    return [...this.nets].map(([project_id, n]) => ({ project_id, subnet: formatCidr(n.subnet), gateway: gatewayOf(n.subnet) }));
  }

  async prune(): Promise<string[]> {
    const removed = [...this.nets].filter(([p, n]) => n.held.size === 0 && !this.busy.get(p)).map(([p]) => p);
    for (const p of removed) this.nets.delete(p);
    return removed;
  }

  async pruneProject(projectId: string): Promise<boolean> {
    const net = this.nets.get(projectId);
    if (!net || net.held.size > 0 || this.busy.get(projectId)) return false;
    this.nets.delete(projectId);
    return true;
  }

  private networkOf(projectId: string): { subnet: Cidr; held: Set<string> } {
    const known = this.nets.get(projectId);
    if (known) return known;
    const taken = new Set([...this.nets.values()].map((n) => n.subnet.base));
    for (const subnet of splitPool(this.pool, this.prefix)) {
      if (taken.has(subnet.base)) continue;
      const net = { subnet, held: new Set<string>() };
      this.nets.set(projectId, net);
      return net;
    }
    throw agentError('SUBNET_POOL_EXHAUSTED', `no free /${this.prefix} subnet left in ${formatCidr(this.pool)} for project ${projectId}`, {
      project_id: projectId,
    });
  }

  private pick(subnet: Cidr, held: ReadonlySet<string>, fixedIp: string | null): string {
    if (fixedIp !== null) {
      if (!isInstanceAddress(subnet, fixedIp))
        throw invalidInput(`fixed_ip ${fixedIp} is not an instance address of the project's subnet`, { field: 'fixed_ip' });
      if (held.has(fixedIp)) throw invalidInput(`fixed_ip ${fixedIp} is already taken in the project's network`, { field: 'fixed_ip' });
      return fixedIp;
    }
    for (const ip of instanceAddresses(subnet)) if (!held.has(ip)) return ip;
    throw agentError('SUBNET_POOL_EXHAUSTED', `the project's subnet ${formatCidr(subnet)} has no free address`);
  }
}
