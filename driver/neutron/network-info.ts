import type { VifSpec } from '../../agent/client/types.js';
import {
  bridgeName,
  neutronError,
  tapName,
  type NeutronClient,
  type NeutronFloatingIp,
  type NeutronNetwork,
  type NeutronPort,
  type NeutronSubnet,
} from './client.js';

/** An address in nova's network model (nova/network/model.py IP). */
export interface ModelIp {
  address: string;
  type: 'fixed' | 'gateway' | 'dns' | 'floating';
  version: 4 | 6;
  meta: Record<string, unknown>;
  /** Of a fixed IP: the floating IPs forwarding to it (nova's FixedIP.floating_ips). */
  floating_ips?: ModelIp[];
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
 * `openstack server show` lists the addresses, floating ones included. `preserve` names the ports
 * the caller made (requested by port id): a delete unbinds them instead of deleting them. `fresh`
 * names ports this build has just made: no floating IP can point at them yet, so none is asked for.
 */
export async function buildNetworkInfo(
  neutron: NeutronClient,
  ports: NeutronPort[],
  preserve: ReadonlySet<string> = new Set(),
  fresh: ReadonlySet<string> = new Set(),
): Promise<ModelVif[]> {
  const networkIds = [...new Set(ports.map((p) => p.network_id))];
  const subnetIds = [...new Set(ports.flatMap((p) => p.fixed_ips.map((f) => f.subnet_id)))];
  // Independent reads, all at once: a boot waits for the slowest, not for their sum.
  const [networks, dhcpPorts, subnets, floating] = await Promise.all([
    Promise.all(networkIds.map((id) => neutron.showNetwork(id))),
    // nova's dhcp_server of a subnet: its DHCP port's address (the isolated metadata server's too).
    Promise.all(networkIds.map((id) => neutron.listPorts({ network_id: id, device_owner: 'network:dhcp' }))),
    Promise.all(subnetIds.map((id) => neutron.showSubnet(id))),
    neutron.listFloatingIps(ports.map((p) => p.id).filter((id) => !fresh.has(id))),
  ]);
  const byId = new Map<string, NeutronNetwork>(networks.map((n, i) => [networkIds[i]!, n]));
  const dhcp = new Map<string, string>();
  for (const d of dhcpPorts.flat()) for (const f of d.fixed_ips) if (!dhcp.has(f.subnet_id)) dhcp.set(f.subnet_id, f.ip_address);
  const subnetById = new Map<string, NeutronSubnet>(subnets.map((s, i) => [subnetIds[i]!, s]));
  return ports.map((p) => vifOf(p, byId.get(p.network_id)!, subnetById, preserve.has(p.id), dhcp, floating));
}

/** Where guests reach the metadata service (nova's metadata API through Neutron's proxy). */
export const METADATA_ADDRESS = '169.254.169.254';

export function vifOf(
  p: NeutronPort,
  net: NeutronNetwork,
  subnets: ReadonlyMap<string, NeutronSubnet>,
  preserve: boolean,
  dhcp: ReadonlyMap<string, string> = new Map(),
  floating: readonly NeutronFloatingIp[] = [],
): ModelVif {
  // As nova's FixedIP.floating_ips: the floating IPs of this port forwarding to that fixed address.
  const floatingOf = (fixed: string): ModelIp[] =>
    floating.filter((f) => f.port_id === p.id && f.fixed_ip_address === fixed).map((f) => modelIp(f.floating_ip_address, 'floating'));
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
        ips: p.fixed_ips.filter((f) => f.subnet_id === s.id).map((f) => ({ ...modelIp(f.ip_address, 'fixed'), floating_ips: floatingOf(f.ip_address) })),
        dns: s.dns_nameservers.map((d) => modelIp(d, 'dns')),
        routes: s.host_routes.map((r) => ({ cidr: r.destination, gateway: modelIp(r.nexthop, 'gateway'), interface: null, meta: {} })),
        // As nova: the DHCP port's address, else the gateway when the subnet has DHCP.
        meta: {
          enable_dhcp: s.enable_dhcp,
          ...(dhcp.get(s.id) ? { dhcp_server: dhcp.get(s.id) } : s.enable_dhcp && s.gateway_ip ? { dhcp_server: s.gateway_ip } : {}),
          ...(dhcp.get(s.id) ? { metadata_server: dhcp.get(s.id) } : {}),
        },
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
    routes: v4.flatMap((s) => [...s.routes.map((r) => ({ destination: r.cidr, nexthop: r.gateway.address })), ...metadataRoute(s)]),
    dns: [...new Set(v4.flatMap((s) => s.dns.map((d) => d.address)))],
  };
}

/**
 * The route a guest configured from the host (not by DHCP) needs to reach Neutron's isolated
 * metadata proxy: 169.254.169.254/32 via the subnet's DHCP port, as Neutron's DHCP server gives
 * its clients (classless static route) when the network has no router serving it. None when the
 * subnet has no DHCP port or a host route for the address already.
 */
function metadataRoute(s: ModelSubnet): Array<{ destination: string; nexthop: string }> {
  const server = s.meta.metadata_server;
  if (typeof server !== 'string' || s.routes.some((r) => r.cidr.startsWith(`${METADATA_ADDRESS}/`))) return [];
  return [{ destination: `${METADATA_ADDRESS}/32`, nexthop: server }];
}
