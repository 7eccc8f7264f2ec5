import type { VifSpec } from '../../agent/client/types.js';
import { bridgeName, neutronError, tapName, type NeutronClient, type NeutronNetwork, type NeutronPort, type NeutronSubnet } from './client.js';

/** An address in nova's network model (nova/network/model.py IP). */
export interface ModelIp {
  address: string;
  type: 'fixed' | 'gateway' | 'dns';
  version: 4 | 6;
  meta: Record<string, unknown>;
  floating_ips?: unknown[];
}

export interface ModelSubnet {
  cidr: string;
  version: 4 | 6;
  gateway: ModelIp | null;
  ips: ModelIp[];
  dns: ModelIp[];
  routes: Array<{ cidr: string; gateway: ModelIp; interface: null; meta: Record<string, unknown> }>;
  meta: Record<string, unknown>;
}

/** One VIF of nova's network_info, as nova-compute saves it in the instance's info cache. */
export interface ModelVif {
  id: string;
  address: string;
  network: {
    id: string;
    bridge: string;
    label: string;
    subnets: ModelSubnet[];
    meta: { injected: boolean; tenant_id: string; mtu: number; tunneled?: boolean };
  };
  type: string;
  details: Record<string, unknown>;
  devname: string;
  ovs_interfaceid: null;
  qbh_params: null;
  qbg_params: null;
  active: boolean;
  vnic_type: string;
  profile: Record<string, unknown>;
  preserve_on_delete: boolean;
  delegate_create: boolean;
  meta: Record<string, unknown>;
}

const version = (ip: string): 4 | 6 => (ip.includes(':') ? 6 : 4);
const modelIp = (address: string, type: ModelIp['type']): ModelIp => ({ address, type, version: version(address), meta: {} });

/**
 * nova's network_info for the given ports, from Neutron's networks and subnets (each read once):
 * what nova-compute builds in `_build_network_info_model` and saves in the info cache, so
 * `openstack server show` lists the addresses. `preserve` names the ports the caller made
 * (requested by port id): a delete unbinds them instead of deleting them.
 */
export async function buildNetworkInfo(neutron: NeutronClient, ports: NeutronPort[], preserve: ReadonlySet<string> = new Set()): Promise<ModelVif[]> {
  const networks = new Map<string, NeutronNetwork>();
  const subnets = new Map<string, NeutronSubnet>();
  for (const p of ports) {
    if (!networks.has(p.network_id)) networks.set(p.network_id, await neutron.showNetwork(p.network_id));
    for (const f of p.fixed_ips) if (!subnets.has(f.subnet_id)) subnets.set(f.subnet_id, await neutron.showSubnet(f.subnet_id));
  }
  return ports.map((p) => vifOf(p, networks.get(p.network_id)!, subnets, preserve.has(p.id)));
}

export function vifOf(p: NeutronPort, net: NeutronNetwork, subnets: ReadonlyMap<string, NeutronSubnet>, preserve: boolean): ModelVif {
  const mine = [...new Set(p.fixed_ips.map((f) => f.subnet_id))].map((id) => subnets.get(id)).filter((s): s is NeutronSubnet => s !== undefined);
  return {
    id: p.id,
    address: p.mac_address,
    network: {
      id: net.id,
      bridge: bridgeName(net.id),
      label: net.name,
      subnets: mine.map((s) => ({
        cidr: s.cidr,
        version: s.ip_version === 6 ? 6 : 4,
        gateway: s.gateway_ip ? modelIp(s.gateway_ip, 'gateway') : null,
        ips: p.fixed_ips.filter((f) => f.subnet_id === s.id).map((f) => ({ ...modelIp(f.ip_address, 'fixed'), floating_ips: [] })),
        dns: s.dns_nameservers.map((d) => modelIp(d, 'dns')),
        routes: s.host_routes.map((r) => ({ cidr: r.destination, gateway: modelIp(r.nexthop, 'gateway'), interface: null, meta: {} })),
        meta: { enable_dhcp: s.enable_dhcp },
      })),
      meta: { injected: false, tenant_id: p.project_id, mtu: net.mtu },
    },
    type: p['binding:vif_type'],
    details: { ...p['binding:vif_details'] },
    devname: tapName(p.id),
    ovs_interfaceid: null,
    qbh_params: null,
    qbg_params: null,
    active: p.status === 'ACTIVE',
    vnic_type: p['binding:vnic_type'],
    profile: {},
    preserve_on_delete: preserve,
    delegate_create: true,
    meta: {},
  };
}

/** What the node needs to plug one VIF into its container: the agent API's VifSpec. */
export type VifPlug = VifSpec;

/**
 * The plug of a VIF; only `bridge` VIFs (the linuxbridge mechanism) can be plugged into a
 * container: any other type (ovs, vhostuser, binding_failed, unbound ...) is refused with
 * VIF_TYPE_UNSUPPORTED naming it, as a build fault nova shows.
 */
export function vifPlug(vif: ModelVif): VifPlug {
  if (vif.type !== 'bridge') {
    throw neutronError(
      'VIF_TYPE_UNSUPPORTED',
      `port ${vif.id} has VIF type ${JSON.stringify(vif.type)}; a Berth node plugs only "bridge" VIFs (ML2 linuxbridge mechanism with its agent on this host)`,
      { port_id: vif.id, vif_type: vif.type },
    );
  }
  const v4 = vif.network.subnets.filter((s) => s.version === 4);
  return {
    portId: vif.id,
    tap: vif.devname,
    bridge: vif.network.bridge,
    mac: vif.address,
    mtu: vif.network.meta.mtu,
    addresses: v4.flatMap((s) => s.ips.map((ip) => ({ address: ip.address, prefix: Number(s.cidr.split('/')[1]) }))),
    gateway: v4.find((s) => s.gateway)?.gateway?.address ?? null,
    routes: v4.flatMap((s) => s.routes.map((r) => ({ destination: r.cidr, nexthop: r.gateway.address }))),
    dns: [...new Set(v4.flatMap((s) => s.dns.map((d) => d.address)))],
  };
}
