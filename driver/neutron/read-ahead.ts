import type { NeutronClient, NeutronNetwork, NeutronPort, NeutronSubnet } from './client.js';

/**
 * A build's reads of Neutron begun before they are needed: the requested networks, their subnets
 * and their DHCP ports are asked for at once, beside the port's creation, and handed to
 * buildNetworkInfo from these answers, each once (a later read asks Neutron again). A read ahead
 * that failed is made again when needed, so the build meets Neutron's own error. Every other
 * call goes straight through.
 */
export function readAhead(neutron: NeutronClient, networkIds: string[]): NeutronClient {
  const networks = new Map<string, Promise<NeutronNetwork>>();
  const subnets = new Map<string, Promise<NeutronSubnet>>();
  const dhcp = new Map<string, Promise<NeutronPort[]>>();
  // Nobody may be waiting yet: a failure is kept for `take`, never reported unhandled.
  const held = <T>(p: Promise<T>): Promise<T> => {
    p.catch(() => undefined);
    return p;
  };
  for (const id of new Set(networkIds)) {
    const net = held(neutron.showNetwork(id));
    networks.set(id, net);
    dhcp.set(id, held(neutron.listPorts({ network_id: id, device_owner: 'network:dhcp' })));
    net.then(
      (n) => {
        for (const s of n.subnets) if (!subnets.has(s)) subnets.set(s, held(neutron.showSubnet(s)));
      },
      () => undefined,
    );
  }
  const take = <T>(memo: Map<string, Promise<T>>, key: string, read: () => Promise<T>): Promise<T> => {
    const ahead = memo.get(key);
    memo.delete(key);
    return ahead ? ahead.catch(read) : read();
  };
  return {
    listPorts: (f) =>
      f.network_id && f.device_owner === 'network:dhcp' && !f.device_id ? take(dhcp, f.network_id, () => neutron.listPorts(f)) : neutron.listPorts(f),
    showPort: (id) => neutron.showPort(id),
    createPort: (req) => neutron.createPort(req),
    bindPort: (id, b) => neutron.bindPort(id, b),
    unbindPort: (id) => neutron.unbindPort(id),
    deletePort: (id) => neutron.deletePort(id),
    showNetwork: (id) => take(networks, id, () => neutron.showNetwork(id)),
    showSubnet: (id) => take(subnets, id, () => neutron.showSubnet(id)),
    securityGroupIds: (projectId, names) => neutron.securityGroupIds(projectId, names),
    listFloatingIps: (portIds) => neutron.listFloatingIps(portIds),
  };
}
