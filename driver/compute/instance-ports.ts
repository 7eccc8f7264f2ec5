import type { VifSpec } from '../../agent/client/types.js';
import type { Logger } from '../../common/log.js';
import { allocateForInstance, deallocateForInstance, savedNetworkInfo, type InstanceNetworking, type NetworkRequest } from '../neutron/allocate.js';
import type { NeutronClient } from '../neutron/client.js';
import { readAhead } from '../neutron/read-ahead.js';
import { bindPortsToHost } from '../neutron/rebind.js';
import { buildNetworkInfo, vifPlug, type ModelVif } from '../neutron/network-info.js';
import type { RequestContext } from '../rpc/envelope.js';
import { novaError } from '../rpc/failure.js';
import type { ControlPlane } from './control-plane.js';
import type { InstanceEvent, InstanceEvents } from './vif-events.js';

export interface InstancePortsDeps {
  neutron: NeutronClient;
  plane: Pick<ControlPlane, 'saveNetworkInfo'>;
  events: InstanceEvents;
  host: string;
  /** [compute] vif_plugging_timeout, seconds; 0: no wait. */
  vifPluggingTimeout: number;
  /** [compute] vif_plugging_is_fatal. */
  vifPluggingIsFatal: boolean;
  log: Logger;
}

/** What an instance's record keeps of its networking (in its spec, under `neutron`). */
export interface StoredNeutron {
  requests: NetworkRequest[];
  security_groups: string[];
  availability_zone: string | null;
  /** nova's `auto` request (auto-allocated topology), which this node refuses. */
  auto?: boolean;
  /** nova's network_info once the ports are allocated. */
  network_info?: ModelVif[];
}

/** What a build on Neutron's ports hands to the agent and keeps on its record. */
export interface BuildNetworking {
  /** nova's network_info, saved as the instance's info cache and kept to release the ports. */
  networkInfo: ModelVif[];
  /** The plug of each VIF, in the guest's order. */
  vifs: VifSpec[];
}

/**
 * An instance's Neutron ports over its life on this node, as nova-compute handles them: allocated
 * and bound to this host before the spawn (`_build_networks_for_instance`), network_info saved as
 * the info cache, the spawn waiting for Neutron's `network-vif-plugged` events of the ports not yet
 * ACTIVE (`wait_for_instance_event`, vif_plugging_timeout / vif_plugging_is_fatal), and released on
 * delete or a failed build (`deallocate_for_instance`).
 */
export class InstancePorts {
  constructor(private readonly d: InstancePortsDeps) {}

  /**
   * The ports of a build (its caller saves the info cache: see SpawnNetworks.prepare). A repeat
   * (a redelivered message, a build a restart interrupted) finds the ports this instance already
   * has and makes no second set.
   */
  async allocate(inst: InstanceNetworking, requests: NetworkRequest[]): Promise<BuildNetworking> {
    // The requested networks' details are read while the ports are looked for and made.
    const neutron = readAhead(
      this.d.neutron,
      requests.flatMap((r) => (r.network_id ? [r.network_id] : [])),
    );
    // Ports the instance has already (it moved here, or a repeat) are bound to this host.
    const existing = await bindPortsToHost(neutron, await neutron.listPorts({ device_id: inst.uuid }), this.d.host, this.d.log);
    const networkInfo = existing.length
      ? await buildNetworkInfo(neutron, existing, new Set(requests.flatMap((r) => (r.port_id ? [r.port_id] : []))))
      : await allocateForInstance(neutron, inst, requests, this.d.host, this.d.log);
    return { networkInfo, vifs: networkInfo.map(vifPlug) };
  }

  /**
   * Starts waiting for `network-vif-plugged` of the VIFs not yet active, before they are plugged
   * (an event may come as soon as the tap appears). `wait` ends the wait: a missing or failed
   * event fails it with VirtualInterfaceCreateException when vif_plugging_is_fatal, else is logged.
   */
  expectPlugged(uuid: string, networkInfo: ModelVif[]): PluggedWait {
    return this.listenPlugged(uuid).expect(networkInfo);
  }

  /**
   * The wait registered before the ports are made or bound to this host (nova's
   * wait_for_instance_event around the binding update and the plug): Neutron may send
   * `network-vif-plugged` as soon as a binding changes, before the node knows the ports it waits
   * for. `expect` names them from the network_info the binding gave (see expectPlugged); events
   * that came before count.
   */
  listenPlugged(uuid: string): { expect(networkInfo: ModelVif[]): PluggedWait; cancel(): void } {
    const listener = this.d.events.listen(uuid);
    return {
      cancel: () => listener.cancel(),
      expect: (networkInfo) => {
        const names = this.d.vifPluggingTimeout > 0 ? networkInfo.filter((v) => !v.active).map((v) => `network-vif-plugged-${v.id}`) : [];
        const handle = listener.expect(names);
        return {
          cancel: () => handle.cancel(),
          wait: async () => {
            const { missing, failed } = await handle.wait(this.d.vifPluggingTimeout);
            if (!missing.length && !failed.length) return;
            const what = failed.length ? `failed: ${failed.join(', ')}` : `not received within ${this.d.vifPluggingTimeout} s: ${missing.join(', ')}`;
            if (!this.d.vifPluggingIsFatal) {
              this.d.log.warn({ instance: uuid, missing, failed }, `network-vif-plugged events ${what}; continuing (vif_plugging_is_fatal = false)`);
              return;
            }
            throw novaError('VirtualInterfaceCreateException', 500, `Virtual Interface creation failed: network-vif-plugged events ${what}`, {});
          },
        };
      },
    };
  }

  /**
   * network_info read again from the instance's ports (after network-changed or
   * network-vif-deleted) and saved as its info cache; ports the caller made stay marked so.
   */
  async refresh(ctx: RequestContext, uuid: string, stored: StoredNeutron): Promise<ModelVif[]> {
    const preserve = new Set(
      savedNetworkInfo(stored.network_info ?? [])
        .filter((v) => v.preserve_on_delete)
        .map((v) => v.id),
    );
    for (const r of stored.requests) if (r.port_id) preserve.add(r.port_id);
    // Ports in the order the instance has them (eth0, eth1 ...), new ones after.
    const order = new Map(savedNetworkInfo(stored.network_info ?? []).map((v, i) => [v.id, i]));
    const ports = (await this.d.neutron.listPorts({ device_id: uuid })).sort((a, b) => (order.get(a.id) ?? 1e6) - (order.get(b.id) ?? 1e6));
    const networkInfo = await buildNetworkInfo(this.d.neutron, ports, preserve);
    await this.d.plane.saveNetworkInfo(ctx, uuid, networkInfo);
    return networkInfo;
  }

  /**
   * One more port for a running instance (nova's attach_interface): the requested port bound to
   * it, or a new one on the requested network, bound to this host; its VIF (not yet saved).
   */
  async attachPort(inst: InstanceNetworking, request: NetworkRequest): Promise<ModelVif> {
    const [vif] = await allocateForInstance(this.d.neutron, inst, [request], this.d.host, this.d.log);
    if (!vif)
      throw novaError('InterfaceAttachFailedNoNetwork', 400, `No specific network was requested and none are available for project '${inst.project_id}'.`, {});
    return vif;
  }

  /**
   * One port released (nova's deallocate_port_for_instance): a port the caller made unbound and
   * kept, one this node made deleted; a port already gone is fine.
   */
  async releasePort(uuid: string, portId: string, preserve: boolean): Promise<void> {
    await deallocateForInstance(this.d.neutron, uuid, [{ id: portId, preserve_on_delete: preserve }], portId);
  }

  /** network_info saved as the instance's info cache with the control plane. */
  saveInfoCache(ctx: RequestContext, uuid: string, networkInfo: ModelVif[]): Promise<void> {
    return this.d.plane.saveNetworkInfo(ctx, uuid, networkInfo);
  }

  /** An external instance event from nova-api (Neutron's notification): see InstanceEvents. */
  deliver(uuid: string, ev: InstanceEvent): boolean {
    return this.d.events.deliver(uuid, ev);
  }

  /**
   * Releases an instance's ports: the ones the caller made (preserve_on_delete in the saved
   * network_info, or requested by port id) unbound, the others deleted.
   */
  async release(uuid: string, stored: StoredNeutron): Promise<void> {
    const saved = savedNetworkInfo(stored.network_info ?? []).map((v) => ({ id: v.id, preserve_on_delete: v.preserve_on_delete }));
    for (const r of stored.requests) if (r.port_id) saved.push({ id: r.port_id, preserve_on_delete: true });
    const done = await deallocateForInstance(this.d.neutron, uuid, saved);
    if (done.deleted.length || done.unbound.length) this.d.log.info({ instance: uuid, ...done }, 'released the instance ports');
  }
}

/** The wait for the network-vif-plugged events of an instance's ports. */
export interface PluggedWait {
  wait(): Promise<void>;
  cancel(): void;
}

/** The networks a build asks for (build_and_run_instance's requested_networks, security_groups). */
export interface BuildNetworks {
  requested: NetworkRequest[] | 'none' | 'auto';
  securityGroups: string[];
}

/**
 * What a build keeps of its networks when the node uses Neutron: null for `--nic none` and for a
 * request of no networks (the instance stays on its project network); `auto` (nova's
 * auto-allocated topology) is kept to be refused at spawn.
 */
export function storedNeutron(networks: BuildNetworks | undefined, az: string | null): StoredNeutron | null {
  if (!networks || networks.requested === 'none') return null;
  const auto = networks.requested === 'auto';
  if (!auto && networks.requested.length === 0) return null;
  return {
    requests: auto ? [] : (networks.requested as NetworkRequest[]),
    security_groups: networks.securityGroups,
    availability_zone: az,
    ...(auto ? { auto } : {}),
  };
}
