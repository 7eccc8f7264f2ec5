import { createHash } from 'node:crypto';
import { BerthError, invalidInput } from '../../common/errors.js';
import { agentError } from '../errors.js';
import { KeyedMutex } from '../../common/keyed-mutex.js';
import { STALE_NETWORK, type ContainerNetwork, type ContainerRuntime, type NetworkInfo } from '../runtime/types.js';
import { type Cidr, formatCidr, gatewayOf, instanceAddresses, isInstanceAddress, macFor, overlaps, parseCidr, splitPool } from './ipv4.js';

/** A project's network as the API reports it; the engine's network name stays inside the agent. */
export interface ProjectNetwork {
  project_id: string;
  subnet: string;
  gateway: string;
}

/** What one instance gets on its project's network. */
export interface InstanceNetwork {
  net: ContainerNetwork;
  prefix: number;
  gateway: string;
}

const NAME_PREFIX = 'berth-proj-';

/** A digest, not the project id itself: ids may hold characters network names may not. */
export const projectNetworkName = (projectId: string): string => `${NAME_PREFIX}${createHash('sha256').update(projectId).digest('hex').slice(0, 16)}`;

const ALLOCATION = '\0subnet-allocation';

/**
 * The project networks instances join, as the agent's instance manager and HTTP API use them.
 * `ProjectNetworks` below is the real one (over the ContainerRuntime); `FakeProjectNetworks`
 * (test/fakes/project-networks.ts) keeps the same rules in memory, and
 * test/conformance/project-networks.ts holds both to them: one subnet per project carved in
 * order from the pool, the gateway its first host address and instances from the second on, a
 * fixed address honoured only inside the subnet and only when free, no address handed out twice,
 * an address free again once released or once its `use` failed, SUBNET_POOL_EXHAUSTED when no
 * subnet or address is left, and a prune that removes only networks no instance holds.
 */
export interface ProjectNetworking {
  /**
   * Runs `use` with the project's network and an address for one instance (created on demand);
   * the address is the instance's once `use` succeeds.
   */
  withAddress<T>(projectId: string, fixedIp: string | null, use: (n: InstanceNetwork) => Promise<T>): Promise<T>;
  /** Forgets an address a removed instance held. */
  release(projectId: string, ip: string | null): void;
  /** The projects' networks. */
  list(): Promise<ProjectNetwork[]>;
  /** Removes project networks no instance uses any more; returns their project ids. */
  prune(): Promise<string[]>;
  /** After an instance of the project went: removes its network when no instance holds it; true when removed. */
  pruneProject(projectId: string): Promise<boolean>;
}

/**
 * One isolated bridge network per project, created on demand with a subnet carved from the pool.
 * The allocation lives in the engine (each network's IPAM config and project label), so it
 * survives agent and engine restarts with nothing stored here.
 */
export class ProjectNetworks implements ProjectNetworking {
  private readonly serial = new KeyedMutex();

  constructor(
    private readonly runtime: ContainerRuntime,
    private readonly pool: Cidr,
    private readonly prefix: number,
  ) {}

  /** Addresses handed to creates still under way, per network: not yet visible in the engine. */
  private readonly reserved = new Map<string, Set<string>>();
  /** Creates under way per project, so a prune leaves their network alone. */
  private readonly inUse = new Map<string, number>();
  /**
   * Each project's network and the addresses its containers hold, read from the engine once and
   * kept up to date by this agent's creates and deletes. Another engine client (a second compute
   * host on the same dockerd) can make it stale; the engine then refuses the address or the
   * network, and the create re-reads the network and tries once more.
   */
  private readonly known = new Map<string, KnownNetwork>();

  /**
   * Runs `use` with the project's network and an address for one instance. Picking the address
   * is serialized per project and the address stays reserved until `use` is done, so two creates
   * never take the same one while the creates themselves run in parallel; a prune never removes
   * a network a create is using. When `use` fails with a STALE_NETWORK reason, the network is
   * re-read from the engine and `use` runs once more with a fresh address.
   */
  async withAddress<T>(projectId: string, fixedIp: string | null, use: (n: InstanceNetwork) => Promise<T>): Promise<T> {
    try {
      return await this.attempt(projectId, fixedIp, false, use);
    } catch (err) {
      if (!isStaleNetwork(err)) throw err;
      return this.attempt(projectId, fixedIp, true, use);
    }
  }

  /** Forgets an address a removed container held. */
  release(projectId: string, ip: string | null): void {
    if (ip) this.known.get(projectId)?.used.delete(ip);
  }

  private async attempt<T>(projectId: string, fixedIp: string | null, reread: boolean, use: (n: InstanceNetwork) => Promise<T>): Promise<T> {
    const { net, ipv4 } = await this.serial.run(projectId, async () => {
      const net = await this.knownNetwork(projectId, reread);
      const pending = this.reserved.get(net.name) ?? new Set<string>();
      const ipv4 = pickAddress(net.subnet, fixedIp, new Set([...net.used, ...pending]));
      pending.add(ipv4);
      this.reserved.set(net.name, pending);
      this.inUse.set(projectId, (this.inUse.get(projectId) ?? 0) + 1);
      return { net, ipv4 };
    });
    const { name, subnet } = net;
    try {
      const result = await use({ net: { name, ipv4, macAddress: macFor(ipv4) }, prefix: subnet.prefix, gateway: gatewayOf(subnet) });
      // A re-read meanwhile may have replaced the entry before the engine showed this address.
      net.used.add(ipv4);
      this.known.get(projectId)?.used.add(ipv4);
      return result;
    } catch (err) {
      if (isStaleNetwork(err)) this.known.delete(projectId);
      throw err;
    } finally {
      this.reserved.get(name)?.delete(ipv4);
      const n = (this.inUse.get(projectId) ?? 1) - 1;
      if (n > 0) this.inUse.set(projectId, n);
      else this.inUse.delete(projectId);
    }
  }

  private async knownNetwork(projectId: string, reread: boolean): Promise<KnownNetwork> {
    const cached = this.known.get(projectId);
    if (cached && !reread) return cached;
    const { name, subnet } = await this.ensure(projectId);
    const net = { name, subnet, used: new Set(await this.runtime.networkAddresses(name)) };
    this.known.set(projectId, net);
    return net;
  }

  async list(): Promise<ProjectNetwork[]> {
    return (await this.runtime.listNetworks()).flatMap((n) => {
      const subnet = ownSubnet(n);
      return subnet && n.projectId ? [{ project_id: n.projectId, subnet: formatCidr(subnet), gateway: gatewayOf(subnet) }] : [];
    });
  }

  /**
   * Removes this host's project networks no container uses any more; returns their project ids.
   * Networks another compute host sharing the engine made (its host label) are left alone.
   */
  async prune(): Promise<string[]> {
    const removed: string[] = [];
    for (const n of await this.runtime.listNetworks()) {
      const projectId = n.projectId;
      if (!projectId || n.name !== projectNetworkName(projectId) || n.ownedHere === false) continue;
      if (await this.removeIfUnused(projectId, n.name)) removed.push(projectId);
    }
    return removed;
  }

  /**
   * After an instance of the project went: removes the project's network when it was the last
   * one there. Known to hold addresses still: nothing to do, no engine call. Otherwise the
   * network is looked up (it may be another host's) and the engine's removal checks its members.
   */
  async pruneProject(projectId: string): Promise<boolean> {
    const known = this.known.get(projectId);
    if ((known && known.used.size > 0) || this.inUse.has(projectId)) return false;
    const name = projectNetworkName(projectId);
    const n = (await this.runtime.listNetworks()).find((x) => x.name === name);
    if (!n || n.ownedHere === false || n.projectId !== projectId) return false;
    return this.removeIfUnused(projectId, name);
  }

  private async removeIfUnused(projectId: string, name: string): Promise<boolean> {
    if (this.inUse.has(projectId)) return false;
    return this.serial.run(projectId, async () => {
      // A create may have taken an address while this waited for the project's turn.
      if (this.inUse.has(projectId) || (this.known.get(projectId)?.used.size ?? 0) > 0) return false;
      const ok = await this.runtime.removeNetwork(name);
      if (ok) this.known.delete(projectId);
      return ok;
    });
  }

  private async ensure(projectId: string): Promise<{ name: string; subnet: Cidr }> {
    const name = projectNetworkName(projectId);
    const found = await this.find(name);
    if (found) return { name, subnet: found };
    // Subnet choice is global: two projects must not race for one /N.
    return this.serial.run(ALLOCATION, async () => {
      const again = await this.find(name);
      if (again) return { name, subnet: again };
      return { name, subnet: await this.allocate(projectId, name) };
    });
  }

  private async find(name: string): Promise<Cidr | null> {
    const net = (await this.runtime.listNetworks()).find((n) => n.name === name);
    if (!net) return null;
    const subnet = ownSubnet(net);
    if (!subnet) throw agentError('RUNTIME_ERROR', `network ${name} exists but has no IPv4 subnet`);
    return subnet;
  }

  private async allocate(projectId: string, name: string): Promise<Cidr> {
    const taken = (await this.runtime.listNetworks())
      .flatMap((n) => n.subnets)
      .map(parseCidr)
      .filter((c): c is Cidr => c !== null);
    for (const candidate of splitPool(this.pool, this.prefix)) {
      if (taken.some((t) => overlaps(t, candidate))) continue;
      const spec = { name, projectId, subnet: formatCidr(candidate), gateway: gatewayOf(candidate) };
      if (await this.runtime.createNetwork(spec)) return candidate;
      // Another engine client took this subnet or the name meanwhile.
      const now = await this.find(name);
      if (now) return now;
    }
    throw agentError('SUBNET_POOL_EXHAUSTED', `no free /${this.prefix} subnet left in ${formatCidr(this.pool)} for project ${projectId}`, {
      project_id: projectId,
    });
  }
}

interface KnownNetwork {
  name: string;
  subnet: Cidr;
  used: Set<string>;
}

function isStaleNetwork(err: unknown): boolean {
  return err instanceof BerthError && err.details.reason === STALE_NETWORK;
}

function pickAddress(subnet: Cidr, fixedIp: string | null, used: ReadonlySet<string>): string {
  if (fixedIp !== null) {
    if (!isInstanceAddress(subnet, fixedIp)) {
      throw invalidInput(`fixed_ip ${fixedIp} is not an instance address of the project's subnet ${formatCidr(subnet)}`, {
        field: 'fixed_ip',
        subnet: formatCidr(subnet),
      });
    }
    if (used.has(fixedIp)) throw invalidInput(`fixed_ip ${fixedIp} is already taken in the project's network`, { field: 'fixed_ip' });
    return fixedIp;
  }
  for (const ip of instanceAddresses(subnet)) if (!used.has(ip)) return ip;
  throw agentError('SUBNET_POOL_EXHAUSTED', `the project's subnet ${formatCidr(subnet)} has no free address`);
}

function ownSubnet(n: NetworkInfo): Cidr | null {
  for (const s of n.subnets) {
    const c = parseCidr(s);
    if (c) return c;
  }
  return null;
}
