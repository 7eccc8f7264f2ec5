import { strict as assert } from 'node:assert';
import { buildNetworkInfo, vifPlug } from '../../../driver/neutron/network-info.js';
import { FakeNeutron } from '../../fakes/neutron.js';

/**
 * A guest plugged with static addresses reaches Neutron's isolated metadata proxy (in the DHCP
 * namespace) as a DHCP client would: a route to 169.254.169.254 via the subnet's DHCP port, which
 * nova's network_info names as the subnet's dhcp_server.
 */
describe('network_info: dhcp_server and the metadata route', () => {
  const port = async (n: FakeNeutron, networkId: string, owner: string) =>
    n.createPort({ network_id: networkId, project_id: 'p', device_id: owner === 'network:dhcp' ? 'dhcp' : 'vm', device_owner: owner, host: 'h' });

  it("names the DHCP port's address as dhcp_server and routes 169.254.169.254/32 through it", async () => {
    const n = new FakeNeutron();
    n.agentHosts.add('h');
    const { network } = n.addNetwork({ cidr: '10.9.0.0/24' });
    const dhcp = await port(n, network.id, 'network:dhcp');
    const vm = await port(n, network.id, 'compute:nova');
    const [vif] = await buildNetworkInfo(n, [vm]);
    assert.equal(vif!.network.subnets[0]!.meta.dhcp_server, dhcp.fixed_ips[0]!.ip_address);
    assert.deepEqual(vifPlug(vif!).routes, [{ destination: '169.254.169.254/32', nexthop: dhcp.fixed_ips[0]!.ip_address }]);
  });

  it('without a DHCP port: dhcp_server is the gateway (as nova), and no metadata route; a host route of the subnet for the address is kept as it is', async () => {
    const n = new FakeNeutron();
    n.agentHosts.add('h');
    const { network } = n.addNetwork({ cidr: '10.9.1.0/24' });
    const [vif] = await buildNetworkInfo(n, [await port(n, network.id, 'compute:nova')]);
    assert.equal(vif!.network.subnets[0]!.meta.dhcp_server, '10.9.1.1');
    assert.deepEqual(vifPlug(vif!).routes, []);

    const { network: routed } = n.addNetwork({ cidr: '10.9.2.0/24', host_routes: [{ destination: '169.254.169.254/32', nexthop: '10.9.2.254' }] });
    await port(n, routed.id, 'network:dhcp');
    const [vif2] = await buildNetworkInfo(n, [await port(n, routed.id, 'compute:nova')]);
    assert.deepEqual(vifPlug(vif2!).routes, [{ destination: '169.254.169.254/32', nexthop: '10.9.2.254' }]);
  });
});
