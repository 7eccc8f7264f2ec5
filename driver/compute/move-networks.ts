import type { InstanceSpec } from '../../agent/client/types.js';
import type { InstanceRow } from '../db/models.js';
import type { RequestContext } from '../rpc/envelope.js';
import type { Plugged, SpawnNetworks } from './spawn-networks.js';
import type { InstanceStore } from './store.js';

/** The networking of an instance that arrives on this host by a move (finish_resize, finish_revert_resize). */
export interface MovedNetworks {
  /** What the agent gets: the ports' VIFs, or none (a project network of this node's agent). */
  spec: InstanceSpec;
  /** What the record keeps: the agent's spec and, with Neutron, the instance's networking. */
  stored: Record<string, unknown>;
  /** The wait for the ports' network-vif-plugged events; null on a project network. */
  plugged: Plugged | null;
}

/**
 * nova's setup_networks_on_host and migrate_instance_finish for a Berth node: an instance on
 * Neutron keeps its ports, bound to this host now (`InstancePorts.allocate` rebinds the ports it
 * finds), its network_info saved again, and the wait for their plug registered before the plug;
 * an instance on a project network gets a new address on this node's (its address stays with the
 * other node's container). The instance's host must be this one with the control plane before the
 * plug: nova-api sends Neutron's events to the instance's host.
 */
export async function networksForMove(net: SpawnNetworks, store: InstanceStore, ctx: RequestContext, row: InstanceRow): Promise<MovedNetworks> {
  const prepared = await net.prepare(ctx, row);
  if (!prepared.plugged) {
    const { vifs: _vifs, ...kept } = prepared.spec;
    const spec: InstanceSpec = { ...kept, fixed_ip: null };
    return { spec, stored: { ...spec }, plugged: null };
  }
  // prepare recorded the ports' network_info with the spec.
  const fresh = await store.get(row.uuid);
  return { spec: prepared.spec, stored: JSON.parse((fresh ?? row).spec) as Record<string, unknown>, plugged: prepared.plugged };
}
