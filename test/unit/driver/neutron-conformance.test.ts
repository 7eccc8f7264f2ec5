import { neutronConformance } from '../../conformance/neutron.js';
import { FakeNeutron } from '../../fakes/neutron.js';

neutronConformance('fake', async () => {
  const neutron = new FakeNeutron();
  neutron.agentHosts.add('conformance-host');
  const routes = [{ destination: '192.0.2.0/24', nexthop: '10.66.0.254' }];
  const { network, subnet } = neutron.addNetwork({ cidr: '10.66.0.0/24', mtu: 1450, dns_nameservers: ['10.66.0.53'], host_routes: routes });
  let next = 10;
  return {
    neutron,
    network: { id: network.id, subnetId: subnet.id, cidr: subnet.cidr, gateway: '10.66.0.1', mtu: 1450, dns: ['10.66.0.53'], routes },
    projectId: 'p-conformance',
    host: 'conformance-host',
    associateFloatingIp: async (portId) => {
      const address = `172.24.4.${next++}`;
      return { id: neutron.associateFloatingIp(portId, address), address };
    },
    disassociateFloatingIp: async (id) => neutron.disassociateFloatingIp(id),
    cleanup: async () => {
      neutron.ports.clear();
      neutron.floatingIps.clear();
    },
  };
});
