import { strict as assert } from 'node:assert';
import { silentLogger } from '../../../common/log.js';
import { allocateForInstance } from '../../../driver/neutron/allocate.js';
import { neutronError } from '../../../driver/neutron/client.js';
import { buildNetworkInfo } from '../../../driver/neutron/network-info.js';
import { readAhead } from '../../../driver/neutron/read-ahead.js';
import { FakeNeutron } from '../../fakes/neutron.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('readAhead: a build reads its networks from Neutron while its ports are made', () => {
  let neutron: FakeNeutron;
  let netId: string;
  beforeEach(() => {
    neutron = new FakeNeutron();
    neutron.agentHosts.add('h');
    netId = neutron.addNetwork({ name: 'n', cidr: '10.9.0.0/24', dns_nameservers: ['10.9.0.2'] }).network.id;
  });

  it('asks for the network, its DHCP ports and its subnets at once, before anything needs them', async () => {
    readAhead(neutron, [netId, netId]);
    await tick();
    assert.deepEqual(neutron.calls.sort(), ['listPorts', 'showNetwork', 'showSubnet']);
  });

  it('serves each answer read ahead once: the allocation makes no read of its own, a later read asks Neutron again', async () => {
    const ahead = readAhead(neutron, [netId]);
    await tick();
    neutron.calls.length = 0;
    const inst = { uuid: '11111111-1111-4111-8111-111111111111', project_id: 'p', availability_zone: null, security_groups: [] };
    const [vif] = await allocateForInstance(ahead, inst, [{ network_id: netId, port_id: null, address: null }], 'h', silentLogger());
    assert.deepEqual(neutron.calls, ['createPort']);
    assert.equal(vif!.network.meta.mtu, 1450);
    assert.deepEqual(
      vif!.network.subnets[0]!.dns.map((d) => d.address),
      ['10.9.0.2'],
    );
    await ahead.showNetwork(netId);
    assert.deepEqual(neutron.calls, ['createPort', 'showNetwork']);
  });

  it('gives the same network_info as reading when needed', async () => {
    const port = await neutron.createPort({ network_id: netId, project_id: 'p', device_id: 'd', device_owner: 'compute:nova', host: 'h' });
    assert.deepEqual(await buildNetworkInfo(readAhead(neutron, [netId]), [port]), await buildNetworkInfo(neutron, [port]));
  });

  it('a read ahead that failed is made again when needed, so the build meets what Neutron answers then', async () => {
    const showNetwork = neutron.showNetwork.bind(neutron);
    let failures = 1;
    neutron.showNetwork = async (id) => {
      if (failures-- > 0) throw neutronError('NEUTRON_UNAVAILABLE', 'not now');
      return showNetwork(id);
    };
    const ahead = readAhead(neutron, [netId]);
    await tick();
    assert.equal((await ahead.showNetwork(netId)).id, netId);
  });
});
