import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { BerthError } from '../../common/errors.js';
import type { NeutronClient, NeutronPort } from '../../driver/neutron/client.js';

/** What the suite needs from a Neutron under test. */
export interface NeutronHarness {
  neutron: NeutronClient;
  /** A network of its own with one IPv4 subnet (/24), made for the suite. */
  network: { id: string; subnetId: string; cidr: string; gateway: string; mtu: number; dns: string[]; routes: Array<{ destination: string; nexthop: string }> };
  /** The project the ports are made for. */
  projectId: string;
  /** A host whose linuxbridge agent is alive. */
  host: string;
  /**
   * A floating IP of the cloud's external network associated with the port (a tenant's
   * `floating ip create --port`); its id and address.
   */
  associateFloatingIp(portId: string): Promise<{ id: string; address: string }>;
  /** `floating ip unset --port`: the floating IP stays, forwarding nowhere. */
  disassociateFloatingIp(id: string): Promise<void>;
  /** Removes every port, floating IP and router it made, and the network, whatever state they were left in. */
  cleanup(): Promise<void>;
}

async function rejectsWithCode(p: Promise<unknown>, code: string, neutronType?: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof BerthError, `expected a BerthError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (neutronType) assert.equal(err.details.neutron_type, neutronType);
    return true;
  });
}

const inSubnet24 = (ip: string, cidr: string) => ip.split('.').slice(0, 3).join('.') === cidr.split('.').slice(0, 3).join('.');

/**
 * The contract of NeutronClient (driver/neutron/client.ts), run against the in-tree fake and
 * against the test cloud's real Neutron: the same answers, the same error codes.
 */
export function neutronConformance(name: string, setup: () => Promise<NeutronHarness>): void {
  describe(`NeutronClient conformance: ${name}`, function () {
    this.timeout(120_000);
    let h: NeutronHarness;
    const made: string[] = [];
    const binding = () => ({ device_id: randomUUID(), device_owner: 'compute:nova', host: h.host });
    const create = async (extra: Partial<Parameters<NeutronClient['createPort']>[0]> = {}): Promise<NeutronPort> => {
      const p = await h.neutron.createPort({ network_id: h.network.id, project_id: h.projectId, ...binding(), ...extra });
      made.push(p.id);
      return p;
    };

    before(async () => {
      h = await setup();
    });
    after(async () => {
      if (!h) return;
      for (const id of made) await h.neutron.deletePort(id).catch(() => undefined);
      await h.cleanup();
    });

    it('creates a port bound to the host as a bridge VIF, owned by the device, with an address of the subnet', async () => {
      const b = binding();
      const p = await h.neutron.createPort({ network_id: h.network.id, project_id: h.projectId, ...b, name: 'conf-a' });
      made.push(p.id);
      assert.equal(p.network_id, h.network.id);
      assert.equal(p.project_id, h.projectId);
      assert.equal(p.device_id, b.device_id);
      assert.equal(p.device_owner, 'compute:nova');
      assert.equal(p.name, 'conf-a');
      assert.equal(p['binding:host_id'], h.host);
      assert.equal(p['binding:vif_type'], 'bridge');
      assert.equal(p['binding:vnic_type'], 'normal');
      assert.equal(p['binding:vif_details'].port_filter, true);
      assert.match(p.mac_address, /^fa:16:3e(:[0-9a-f]{2}){3}$/);
      assert.equal(p.fixed_ips.length, 1);
      assert.equal(p.fixed_ips[0]!.subnet_id, h.network.subnetId);
      assert.ok(inSubnet24(p.fixed_ips[0]!.ip_address, h.network.cidr), p.fixed_ips[0]!.ip_address);
      assert.notEqual(p.fixed_ips[0]!.ip_address, h.network.gateway);
      // nothing is plugged yet
      assert.equal(p.status, 'DOWN');
      assert.equal(p.port_security_enabled, true);
      assert.deepEqual(await h.neutron.listPorts({ device_id: b.device_id }), [p]);
      assert.deepEqual(await h.neutron.showPort(p.id), p);
    });

    it("gives a port the project's default security group, and resolves security group names and ids (nova-api hands a node ids)", async () => {
      const [def] = await h.neutron.securityGroupIds(h.projectId, ['default']);
      assert.ok(def);
      const p = await create();
      assert.deepEqual(p.security_groups, [def]);
      assert.deepEqual(await h.neutron.securityGroupIds(h.projectId, [def, 'default']), [def, def]);
      await rejectsWithCode(h.neutron.securityGroupIds(h.projectId, [`no-such-group-${randomUUID().slice(0, 8)}`]), 'NEUTRON_NOT_FOUND');
      await rejectsWithCode(h.neutron.securityGroupIds(h.projectId, [randomUUID()]), 'NEUTRON_NOT_FOUND');
    });

    it('honours a requested address and refuses it twice or outside the subnet', async () => {
      const base = h.network.cidr.split('.').slice(0, 3).join('.');
      const ip = `${base}.${200 + Math.floor(Math.random() * 50)}`;
      const p = await create({ fixed_ips: [{ ip_address: ip }] });
      assert.deepEqual(p.fixed_ips, [{ subnet_id: h.network.subnetId, ip_address: ip }]);
      await rejectsWithCode(create({ fixed_ips: [{ ip_address: ip }] }), 'NEUTRON_CONFLICT', 'IpAddressAlreadyAllocated');
      await rejectsWithCode(create({ fixed_ips: [{ ip_address: '192.0.2.77', subnet_id: h.network.subnetId }] }), 'NEUTRON_BAD_REQUEST', 'InvalidIpForSubnet');
    });

    it('refuses a port on a network that does not exist', async () => {
      await rejectsWithCode(create({ network_id: randomUUID() }), 'NEUTRON_NOT_FOUND', 'NetworkNotFound');
    });

    it('fails the binding to a host without an agent', async () => {
      const p = await create({ host: `no-agent-${randomUUID().slice(0, 8)}` });
      assert.equal(p['binding:vif_type'], 'binding_failed');
    });

    it('unbinds a port the caller keeps and binds it to another device', async () => {
      const p = await create();
      const free = await h.neutron.unbindPort(p.id);
      assert.equal(free.device_id, '');
      assert.equal(free.device_owner, '');
      assert.equal(free['binding:host_id'], '');
      assert.equal(free['binding:vif_type'], 'unbound');
      assert.deepEqual(free.fixed_ips, p.fixed_ips);
      assert.equal(free.mac_address, p.mac_address);
      const b = binding();
      const bound = await h.neutron.bindPort(p.id, b);
      assert.equal(bound.device_id, b.device_id);
      assert.equal(bound['binding:vif_type'], 'bridge');
      assert.deepEqual(
        (await h.neutron.listPorts({ device_id: b.device_id })).map((x) => x.id),
        [p.id],
      );
    });

    it('deletes a port, and a second delete is fine', async () => {
      const p = await create();
      await h.neutron.deletePort(p.id);
      await rejectsWithCode(h.neutron.showPort(p.id), 'NEUTRON_NOT_FOUND');
      await h.neutron.deletePort(p.id);
      await rejectsWithCode(h.neutron.bindPort(p.id, binding()), 'NEUTRON_NOT_FOUND');
    });

    it("lists a network's ports by network", async () => {
      const a = await create();
      const ids = (await h.neutron.listPorts({ network_id: h.network.id })).map((p) => p.id);
      assert.ok(ids.includes(a.id));
      assert.deepEqual(ids, [...ids].sort());
    });

    it('lists the floating IPs of ports in one call: none for no port or a port without one, an associated one with its fixed address, none once disassociated', async () => {
      const a = await create();
      const b = await create();
      assert.deepEqual(await h.neutron.listFloatingIps([]), []);
      assert.deepEqual(await h.neutron.listFloatingIps([a.id, b.id]), []);
      const fip = await h.associateFloatingIp(a.id);
      const listed = { id: fip.id, floating_ip_address: fip.address, port_id: a.id, fixed_ip_address: a.fixed_ips[0]!.ip_address };
      assert.deepEqual(await h.neutron.listFloatingIps([a.id, b.id]), [listed]);
      assert.deepEqual(await h.neutron.listFloatingIps([b.id]), []);
      await h.disassociateFloatingIp(fip.id);
      assert.deepEqual(await h.neutron.listFloatingIps([a.id]), []);
    });

    it('shows the network (MTU, subnets) and the subnet (gateway, DNS, routes)', async () => {
      const n = await h.neutron.showNetwork(h.network.id);
      assert.equal(n.id, h.network.id);
      assert.equal(n.mtu, h.network.mtu);
      assert.deepEqual(n.subnets, [h.network.subnetId]);
      const s = await h.neutron.showSubnet(h.network.subnetId);
      assert.deepEqual(s, {
        id: h.network.subnetId,
        network_id: h.network.id,
        cidr: h.network.cidr,
        ip_version: 4,
        gateway_ip: h.network.gateway,
        enable_dhcp: true,
        dns_nameservers: h.network.dns,
        host_routes: h.network.routes,
      });
      await rejectsWithCode(h.neutron.showNetwork(randomUUID()), 'NEUTRON_NOT_FOUND');
      await rejectsWithCode(h.neutron.showSubnet(randomUUID()), 'NEUTRON_NOT_FOUND');
    });
  });
}
