import type { Logger } from '../../common/log.js';
import type { DockerApi } from '../runtime/docker-api.js';
import type { ContainerNames } from '../runtime/container-names.js';
import { inspectContainer, type DockerContainer } from '../runtime/docker-inspect.js';
import type { NetworkInfo, NetworkSpec } from '../runtime/types.js';
import { DockerNetworks, type BridgeInfo } from './docker-networks.js';
import { DockerPlugs, type PlugWatch } from './docker-plugs.js';
import type { DockerEventHub } from '../runtime/docker-event-hub.js';
import type { VethCounters } from './veth.js';
import type { VifSpec } from '../client/types.js';
import type { PluggedVif } from './attached-vifs.js';

export type { BridgeInfo } from './docker-networks.js';
export type { PlugWatch } from './docker-plugs.js';
/** The agent's one engine event stream, as a subscriber sees it. */
export type EngineEvents = Pick<DockerEventHub, 'subscribe'>;

/**
 * Everything the container runtime asks of the host's networking, in one place: the project
 * networks on the engine (DockerNetworks) and, with `[docker] network_attach = agent`, the veth
 * pairs that plug containers into them (DockerPlugs, VethPlumber). The runtime holds one of these
 * and nothing else of networking; it reads containers itself, so nothing here calls back into it.
 */
export interface HostNetworking {
  list(): Promise<NetworkInfo[]>;
  create(spec: NetworkSpec): Promise<boolean>;
  remove(name: string): Promise<boolean>;
  addresses(name: string): Promise<string[]>;
  /** The engine network's bridge, prefix and gateway (`fresh`: not from what was remembered). */
  bridge(name: string, fresh?: boolean): Promise<BridgeInfo>;
  /** Plugged containers (any state) labelled with `ipv4` on network `name`. */
  pluggedHolders(name: string, ipv4: string): Promise<string[]>;
  /** Plugs a running container the agent attaches; resolves with the container as read then. */
  plug(uuid: string): Promise<DockerContainer | null>;
  /** Attaches a Neutron VIF to an instance (see DockerPlugs.attachVif); resolves with the guest interface. */
  attachVif(uuid: string, vif: VifSpec): Promise<string>;
  /** Detaches a port's VIF from an instance; a port not attached is fine. */
  detachVif(uuid: string, portId: string): Promise<void>;
  /** The taps of a new container's Neutron VIFs made on their bridges before its start (DockerPlugs.preplug). */
  preplug(uuid: string, vifs: VifSpec[]): Promise<void>;
  /** The pairs of the given VIFs removed, whatever their state. */
  release(vifs: VifSpec[]): Promise<void>;
  /** The Neutron VIFs of an instance now. */
  vifs(uuid: string): Promise<PluggedVif[]>;
  /** After a container's removal: its VIFs' taps deleted and its record of attached VIFs dropped. */
  unplug(uuid: string, vifs: PluggedVif[]): Promise<void>;
  /** The guest's traffic counters from the host end of its pair; null when it has none. */
  counters(uuid: string): Promise<VethCounters | null>;
  /** Records the address a container the agent created holds (its instance, network and address labels). */
  noteCreated(labels: Record<string, string>): void;
  /** Drops what is remembered of a removed container. */
  forget(uuid: string): void;
  /** Keeps plugged containers plugged whatever starts them, until stopped. */
  follow(log: Logger, events: EngineEvents): PlugWatch;
}

/** HostNetworking on the Docker Engine API. */
export class DockerHostNetworking implements HostNetworking {
  private readonly networks: DockerNetworks;
  private readonly plugs: DockerPlugs;

  constructor(api: DockerApi, host: string | undefined, names: ContainerNames, stateDir?: string) {
    this.networks = new DockerNetworks(api, host);
    this.plugs = new DockerPlugs(api, this.networks, (uuid) => inspectContainer(api, names, uuid), host, stateDir);
  }

  list(): Promise<NetworkInfo[]> {
    return this.networks.list();
  }
  create(spec: NetworkSpec): Promise<boolean> {
    return this.networks.create(spec);
  }
  remove(name: string): Promise<boolean> {
    return this.networks.remove(name);
  }
  addresses(name: string): Promise<string[]> {
    return this.networks.addresses(name);
  }
  bridge(name: string, fresh = false): Promise<BridgeInfo> {
    return this.networks.bridge(name, fresh);
  }
  pluggedHolders(name: string, ipv4: string): Promise<string[]> {
    return this.networks.pluggedHolders(name, ipv4);
  }
  plug(uuid: string): Promise<DockerContainer | null> {
    return this.plugs.plug(uuid);
  }
  attachVif(uuid: string, vif: VifSpec): Promise<string> {
    return this.plugs.attachVif(uuid, vif);
  }
  detachVif(uuid: string, portId: string): Promise<void> {
    return this.plugs.detachVif(uuid, portId);
  }
  preplug(uuid: string, vifs: VifSpec[]): Promise<void> {
    return this.plugs.preplug(uuid, vifs);
  }
  release(vifs: VifSpec[]): Promise<void> {
    return this.plugs.release(vifs);
  }
  vifs(uuid: string): Promise<PluggedVif[]> {
    return this.plugs.vifs(uuid);
  }
  unplug(uuid: string, vifs: PluggedVif[]): Promise<void> {
    return this.plugs.unplug(uuid, vifs);
  }
  counters(uuid: string): Promise<VethCounters | null> {
    return this.plugs.counters(uuid);
  }
  noteCreated(labels: Record<string, string>): void {
    this.networks.noteCreated(labels);
  }
  forget(uuid: string): void {
    this.plugs.forget(uuid);
    this.networks.noteRemoved(uuid);
  }
  follow(log: Logger, events: EngineEvents): PlugWatch {
    return this.plugs.follow(log, events);
  }
}
