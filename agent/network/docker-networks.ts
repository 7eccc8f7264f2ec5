import { agentError } from '../errors.js';
import type { DockerApi } from '../runtime/docker-api.js';
import { LABEL_HOST, LABEL_IPV4, LABEL_NETWORK, LABEL_PROJECT, ownedBy, STALE_NETWORK, type NetworkInfo, type NetworkSpec } from '../runtime/types.js';
import { AddressBook } from './address-book.js';

interface DockerNetwork {
  Id?: string;
  Name: string;
  Labels?: Record<string, string> | null;
  Options?: Record<string, string> | null;
  IPAM?: { Config?: Array<{ Subnet?: string; Gateway?: string }> | null };
}

interface DockerContainerSummary {
  Labels?: Record<string, string> | null;
  NetworkSettings?: { Networks?: Record<string, { IPAddress?: string; IPAMConfig?: { IPv4Address?: string } | null }> | null };
}

/** What plugging a container into a project network needs from the engine's network; `projectId` is whose network it is. */
export interface BridgeInfo {
  bridge: string;
  prefix: number;
  gateway: string;
  projectId: string | null;
}

/** The network operations of the ContainerRuntime on the Docker Engine API. */
export class DockerNetworks {
  /** Per network name; an engine network never changes its bridge, subnet or gateway. */
  private readonly bridges = new Map<string, BridgeInfo>();

  /** The address book, loaded by the first create that needs it; null until then or after a reset. */
  private book: Promise<AddressBook> | null = null;

  constructor(
    private readonly api: DockerApi,
    /** The compute host ([DEFAULT] host) whose networks these are; several may share one dockerd. */
    private readonly host?: string,
  ) {}

  async list(): Promise<NetworkInfo[]> {
    const res = await this.api.json<DockerNetwork[]>({ path: '/networks', what: 'list networks' });
    return (res.body ?? []).map((n) => ({
      name: n.Name,
      projectId: n.Labels?.[LABEL_PROJECT] ?? null,
      ownedHere: ownedBy(n.Labels, this.host),
      subnets: (n.IPAM?.Config ?? []).map((c) => c.Subnet).filter((s): s is string => typeof s === 'string' && s.includes('.')),
    }));
  }

  async create(spec: NetworkSpec): Promise<boolean> {
    const res = await this.api.json<unknown>({
      method: 'POST',
      path: '/networks/create',
      accept: [403, 409],
      what: 'create a project network',
      body: {
        Name: spec.name,
        // Without it Docker happily makes a second network of the same name.
        CheckDuplicate: true,
        Driver: 'bridge',
        IPAM: { Driver: 'default', Config: [{ Subnet: spec.subnet, Gateway: spec.gateway }] },
        // The host label: agents sharing the engine never prune each other's networks.
        Labels: { [LABEL_PROJECT]: spec.projectId, ...(this.host ? { [LABEL_HOST]: this.host } : {}) },
      },
    });
    // 409: the name is taken; 403: "Pool overlaps with other one on this address space".
    return res.status < 300;
  }

  async remove(name: string): Promise<boolean> {
    if ((await this.members(name)).length > 0) return false;
    const res = await this.api.json<unknown>({
      method: 'DELETE',
      path: `/networks/${encodeURIComponent(name)}`,
      accept: [403, 404, 409],
      what: 'remove a project network',
    });
    this.bridges.delete(name);
    return res.status < 300 || res.status === 404;
  }

  async addresses(name: string): Promise<string[]> {
    const out: string[] = [];
    for (const c of await this.members(name)) {
      const ip = addressOn(c, name);
      if (ip) out.push(ip);
    }
    return out;
  }

  /**
   * The bridge, prefix and gateway of a network, for plugging a container into it. RUNTIME_ERROR
   * with reason STALE_NETWORK when the network is gone; `fresh` reads past the cache.
   */
  async bridge(name: string, fresh = false): Promise<BridgeInfo> {
    const known = this.bridges.get(name);
    if (known && !fresh) return known;
    const res = await this.api.json<DockerNetwork>({ path: `/networks/${encodeURIComponent(name)}`, accept: [404], what: 'inspect a project network' });
    const n = res.body;
    const config = (n?.IPAM?.Config ?? []).find((c) => c.Subnet?.includes('.'));
    const prefix = Number(config?.Subnet?.split('/')[1]);
    if (res.status === 404 || !n?.Id || !config?.Gateway || !Number.isInteger(prefix)) {
      this.bridges.delete(name);
      throw agentError('RUNTIME_ERROR', `project network ${name} no longer exists`, { reason: STALE_NETWORK });
    }
    // Docker names a user-defined network's bridge br-<first 12 of its id> unless told otherwise.
    const info = {
      bridge: n.Options?.['com.docker.network.bridge.name'] ?? `br-${n.Id.slice(0, 12)}`,
      prefix,
      gateway: config.Gateway,
      projectId: n.Labels?.[LABEL_PROJECT] || null,
    };
    this.bridges.set(name, info);
    return info;
  }

  /**
   * Uuids (instance labels) of the containers, any state, the agent plugged into the network with
   * `ipv4`, from the address book (AddressBook): no listing of containers per create.
   */
  async pluggedHolders(name: string, ipv4: string): Promise<string[]> {
    return (await this.addressBook()).holdersOf(name, ipv4);
  }

  /** A container the agent created (from its labels), or one the engine reported created. */
  noteCreated(labels: Record<string, string> | null | undefined): void {
    void this.book?.then(
      (b) => b.add(labels),
      () => undefined,
    );
  }

  /** A container that was removed. */
  noteRemoved(uuid: string): void {
    void this.book?.then(
      (b) => b.remove(uuid),
      () => undefined,
    );
  }

  /** Reads the book from the engine again at its next use (after missed events). */
  resetAddressBook(): void {
    this.book = null;
  }

  private addressBook(): Promise<AddressBook> {
    if (!this.book) {
      const loading = this.containers({ label: [LABEL_NETWORK] }).then((all) => {
        const book = new AddressBook();
        for (const c of all) book.add(c.Labels);
        return book;
      });
      // A failed read is not remembered: the next create reads again.
      loading.catch(() => {
        if (this.book === loading) this.book = null;
      });
      this.book = loading;
    }
    return this.book;
  }

  /**
   * Containers in any state on the network: attached by the engine, or plugged by the agent
   * (labelled). Docker's own network inspect lists running, engine-attached ones only.
   */
  private async members(name: string): Promise<DockerContainerSummary[]> {
    const [attached, plugged] = await Promise.all([this.containers({ network: [name] }), this.containers({ label: [`${LABEL_NETWORK}=${name}`] })]);
    return [...attached, ...plugged];
  }

  /** Containers in any state matching the engine's list `filters`. */
  private async containers(filters: Record<string, string[]>): Promise<DockerContainerSummary[]> {
    const res = await this.api.json<DockerContainerSummary[]>({
      path: '/containers/json',
      query: { all: 1, filters: JSON.stringify(filters) },
      what: "list a network's containers",
    });
    return res.body ?? [];
  }
}

/** A stopped container holds no address yet still owns the one it is configured to take. */
function addressOn(c: DockerContainerSummary, name: string): string | undefined {
  if (c.Labels?.[LABEL_NETWORK] === name) return c.Labels[LABEL_IPV4] || undefined;
  const ep = c.NetworkSettings?.Networks?.[name];
  return ep?.IPAMConfig?.IPv4Address || ep?.IPAddress || undefined;
}
