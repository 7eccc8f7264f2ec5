import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { BerthError } from '../../../common/errors.js';
import { silentLogger } from '../../../common/log.js';
import { allocateForInstance, deallocateForInstance, parseRequestedNetworks, savedNetworkInfo } from '../../../driver/neutron/allocate.js';
import { vifPlug, type ModelVif } from '../../../driver/neutron/network-info.js';
import { FakeNeutron } from '../../fakes/neutron.js';

const log = silentLogger();
const HOST = 'node-net';

const request = (data: Record<string, unknown>) => ({
  'nova_object.name': 'NetworkRequestList',
  'nova_object.namespace': 'nova',
  'nova_object.version': '1.1',
  'nova_object.data': {
    objects: [{ 'nova_object.name': 'NetworkRequest', 'nova_object.namespace': 'nova', 'nova_object.version': '1.3', 'nova_object.data': data }],
  },
});

async function rejectsWithCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof BerthError && err.code === code);
}

describe('neutron: requested networks, allocation, network_info and plugs', () => {
  let neutron: FakeNeutron;
  let netId: string;
  let subnetId: string;
  const inst = () => ({ uuid: randomUUID(), project_id: 'p1', availability_zone: 'az1', security_groups: [] as string[] });

  beforeEach(() => {
    neutron = new FakeNeutron();
    neutron.agentHosts.add(HOST);
    const { network, subnet } = neutron.addNetwork({
      name: 'private',
      cidr: '10.66.0.0/24',
      mtu: 1450,
      dns_nameservers: ['10.66.0.53'],
      host_routes: [{ destination: '192.0.2.0/24', nexthop: '10.66.0.254' }],
    });
    netId = network.id;
    subnetId = subnet.id;
  });

  it("reads nova's NetworkRequestList: none, auto, networks with addresses, ports", () => {
    assert.equal(parseRequestedNetworks(request({ network_id: 'none', port_id: null })), 'none');
    assert.equal(parseRequestedNetworks(request({ network_id: 'auto', port_id: null })), 'auto');
    assert.deepEqual(parseRequestedNetworks(request({ network_id: 'n1', address: '10.0.0.5', port_id: null })), [
      { network_id: 'n1', port_id: null, address: '10.0.0.5' },
    ]);
    assert.deepEqual(parseRequestedNetworks(request({ port_id: 'p9' })), [{ network_id: null, port_id: 'p9', address: null }]);
    assert.deepEqual(parseRequestedNetworks(null), []);
  });

  it('creates a bound port per requested network and builds network_info from it', async () => {
    const i = inst();
    const [vif, ...rest] = await allocateForInstance(neutron, i, [{ network_id: netId, port_id: null, address: null }], HOST, log);
    assert.equal(rest.length, 0);
    const port = neutron.ports.get(vif!.id)!;
    assert.equal(port.device_id, i.uuid);
    assert.equal(port.device_owner, 'compute:az1');
    assert.equal(port['binding:host_id'], HOST);
    assert.equal(port.project_id, 'p1');
    assert.equal(vif!.type, 'bridge');
    assert.equal(vif!.address, port.mac_address);
    assert.equal(vif!.devname, `tap${port.id.slice(0, 11)}`);
    assert.equal(vif!.network.bridge, `brq${netId.slice(0, 11)}`);
    assert.equal(vif!.network.label, 'private');
    assert.equal(vif!.network.meta.mtu, 1450);
    assert.equal(vif!.preserve_on_delete, false);
    assert.deepEqual(
      vif!.network.subnets[0]!.ips.map((x) => x.address),
      [port.fixed_ips[0]!.ip_address],
    );
    assert.deepEqual(vifPlug(vif!), {
      portId: port.id,
      tap: `tap${port.id.slice(0, 11)}`,
      bridge: `brq${netId.slice(0, 11)}`,
      mac: port.mac_address,
      mtu: 1450,
      addresses: [{ address: port.fixed_ips[0]!.ip_address, prefix: 24 }],
      gateway: '10.66.0.1',
      routes: [{ destination: '192.0.2.0/24', nexthop: '10.66.0.254' }],
      dns: ['10.66.0.53'],
    });
    // what the info cache keeps survives its JSON round trip
    assert.deepEqual(savedNetworkInfo(JSON.stringify([vif])), [vif]);
  });

  it('honours a requested address and named security groups', async () => {
    neutron.securityGroups.set('p1', [{ id: 'sg-web', name: 'web' }]);
    const i = { ...inst(), security_groups: ['web'] };
    const [vif] = await allocateForInstance(neutron, i, [{ network_id: netId, port_id: null, address: '10.66.0.42' }], HOST, log);
    const port = neutron.ports.get(vif!.id)!;
    assert.deepEqual(port.fixed_ips, [{ subnet_id: subnetId, ip_address: '10.66.0.42' }]);
    assert.deepEqual(port.security_groups, ['sg-web']);
  });

  it('binds a given port, keeps it on delete (unbound) and deletes the ports it made', async () => {
    const given = await neutron.createPort({ network_id: netId, project_id: 'p1', device_id: '', device_owner: '', host: '' });
    const i = inst();
    const vifs = await allocateForInstance(
      neutron,
      i,
      [
        { network_id: null, port_id: given.id, address: null },
        { network_id: netId, port_id: null, address: null },
      ],
      HOST,
      log,
    );
    assert.deepEqual(
      vifs.map((v) => v.preserve_on_delete),
      [true, false],
    );
    assert.equal(neutron.ports.get(given.id)!.device_id, i.uuid);
    const made = vifs[1]!.id;
    const done = await deallocateForInstance(neutron, i.uuid, savedNetworkInfo(JSON.stringify(vifs)));
    assert.deepEqual(done, { deleted: [made], unbound: [given.id] });
    assert.equal(neutron.ports.has(made), false);
    assert.equal(neutron.ports.get(given.id)!.device_id, '');
    // a second delete finds nothing left to do
    assert.deepEqual(await deallocateForInstance(neutron, i.uuid, []), { deleted: [], unbound: [] });
  });

  it("refuses another device's port", async () => {
    const other = await neutron.createPort({ network_id: netId, project_id: 'p1', device_id: randomUUID(), device_owner: 'compute:nova', host: HOST });
    await rejectsWithCode(allocateForInstance(neutron, inst(), [{ network_id: null, port_id: other.id, address: null }], HOST, log), 'PORT_IN_USE');
  });

  it('fails the build when the binding fails, and undoes what it did', async () => {
    const given = await neutron.createPort({ network_id: netId, project_id: 'p1', device_id: '', device_owner: '', host: '' });
    const before = new Set(neutron.ports.keys());
    await rejectsWithCode(
      allocateForInstance(
        neutron,
        inst(),
        [
          { network_id: null, port_id: given.id, address: null },
          { network_id: netId, port_id: null, address: null },
        ],
        'host-without-agent',
        log,
      ),
      'PORT_BINDING_FAILED',
    );
    assert.deepEqual(new Set(neutron.ports.keys()), before);
    assert.equal(neutron.ports.get(given.id)!.device_id, '');
    assert.equal(neutron.ports.get(given.id)!['binding:vif_type'], 'unbound');
  });

  it('undoes the ports already made when a later request fails', async () => {
    await rejectsWithCode(
      allocateForInstance(
        neutron,
        inst(),
        [
          { network_id: netId, port_id: null, address: null },
          { network_id: randomUUID(), port_id: null, address: null },
        ],
        HOST,
        log,
      ),
      'NEUTRON_NOT_FOUND',
    );
    assert.equal(neutron.ports.size, 0);
  });

  it('refuses to plug a VIF of another type, naming the type', () => {
    const vif = {
      id: 'p',
      type: 'ovs',
      devname: 'tapp',
      address: 'fa:16:3e:00:00:01',
      network: { bridge: 'br-int', subnets: [], meta: { mtu: 1500 } },
    } as unknown as ModelVif;
    assert.throws(
      () => vifPlug(vif),
      (err: unknown) => err instanceof BerthError && err.code === 'VIF_TYPE_UNSUPPORTED' && /"ovs"/.test(err.message),
    );
  });
});
