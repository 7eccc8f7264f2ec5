import { strict as assert } from 'node:assert';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { silentLogger } from '../../../common/log.js';
import { allocateForInstance } from '../../../driver/neutron/allocate.js';
import { HttpNeutron } from '../../../driver/neutron/http.js';
import { buildNetworkInfo } from '../../../driver/neutron/network-info.js';
import { FakeNeutron } from '../../fakes/neutron.js';
import { inProcessAgent, serveInProcess } from '../../support/in-process.js';

/**
 * Floating IPs in nova's network_info (nova/network/neutron.py `_nw_info_get_ips`): each fixed IP
 * lists the floating IPs that forward to it, so `openstack server show` shows the floating address
 * once the info cache is saved (at a build, and again on Neutron's network-changed).
 */
describe('network_info: floating IPs of the fixed addresses', () => {
  let n: FakeNeutron;
  let netId: string;
  const port = (device = 'vm') => n.createPort({ network_id: netId, project_id: 'p', device_id: device, device_owner: 'compute:nova', host: 'h' });
  beforeEach(() => {
    n = new FakeNeutron();
    n.agentHosts.add('h');
    netId = n.addNetwork({ cidr: '10.9.0.0/24' }).network.id;
  });

  it("lists a port's floating IP under the fixed IP it forwards to, as nova's FixedIP.floating_ips; other ports have none", async () => {
    const a = await port();
    const b = await port();
    n.associateFloatingIp(a.id, '172.24.4.20');
    const [va, vb] = await buildNetworkInfo(n, [a, b]);
    const [ip] = va!.network.subnets[0]!.ips;
    assert.equal(ip!.address, a.fixed_ips[0]!.ip_address);
    assert.deepEqual(ip!.floating_ips, [{ address: '172.24.4.20', type: 'floating', version: 4, meta: {} }]);
    assert.deepEqual(vb!.network.subnets[0]!.ips[0]!.floating_ips, []);
  });

  it('asks Neutron once for all ports, and not at all for ports the build has just made', async () => {
    const a = await port();
    const b = await port();
    n.calls.length = 0;
    await buildNetworkInfo(n, [a, b]);
    assert.equal(n.calls.filter((c) => c === 'listFloatingIps').length, 1);
    n.calls.length = 0;
    const inst = { uuid: '11111111-1111-4111-8111-111111111111', project_id: 'p', availability_zone: null, security_groups: [] };
    await allocateForInstance(n, inst, [{ network_id: netId, port_id: null, address: null }], 'h', silentLogger());
    assert.ok(!n.calls.includes('listFloatingIps'), n.calls.join(' '));
  });

  it('a port given by the caller brings its floating IP into the build', async () => {
    const given = await n.createPort({ network_id: netId, project_id: 'p', device_id: '', device_owner: '', host: '' });
    n.associateFloatingIp(given.id, '172.24.4.21');
    const inst = { uuid: '22222222-2222-4222-8222-222222222222', project_id: 'p', availability_zone: null, security_groups: [] };
    const [vif] = await allocateForInstance(n, inst, [{ network_id: null, port_id: given.id, address: null }], 'h', silentLogger());
    assert.deepEqual(
      vif!.network.subnets[0]!.ips[0]!.floating_ips!.map((f) => f.address),
      ['172.24.4.21'],
    );
  });

  it('a disassociated floating IP, or one of a deleted port, is no longer listed', async () => {
    const a = await port();
    const fip = n.associateFloatingIp(a.id, '172.24.4.22');
    n.disassociateFloatingIp(fip);
    assert.deepEqual((await buildNetworkInfo(n, [a]))[0]!.network.subnets[0]!.ips[0]!.floating_ips, []);
    n.associateFloatingIp(a.id, '172.24.4.23');
    await n.deletePort(a.id);
    assert.deepEqual(await n.listFloatingIps([a.id]), []);
  });
});

describe('HttpNeutron.listFloatingIps', () => {
  const session = (base: string) => ({ token: async () => 'tok', endpoint: async () => base, invalidate: () => undefined });
  const serve = async (answer: (req: IncomingMessage, res: ServerResponse) => void) => {
    const seen: string[] = [];
    const srv = serveInProcess((req, res) => {
      seen.push(req.url ?? '');
      answer(req, res);
    });
    return { srv, seen, neutron: new HttpNeutron(session(srv.base), 'public', '', inProcessAgent) };
  };

  it('asks for all ports in one GET (port_id repeated, the fields it needs) and returns them ordered by id', async () => {
    const { srv, seen, neutron } = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          floatingips: [
            { id: 'f2', floating_ip_address: '172.24.4.9', port_id: 'p2', fixed_ip_address: '10.0.0.5' },
            { id: 'f1', floating_ip_address: '172.24.4.8', port_id: 'p1', fixed_ip_address: '10.0.0.4' },
          ],
        }),
      );
    });
    try {
      const got = await neutron.listFloatingIps(['p1', 'p2', 'p1']);
      assert.deepEqual(
        got.map((f) => f.id),
        ['f1', 'f2'],
      );
      assert.equal(seen.length, 1);
      const q = new URL(seen[0]!, 'http://x').searchParams;
      assert.ok(seen[0]!.startsWith('/v2.0/floatingips?'), seen[0]);
      assert.deepEqual(q.getAll('port_id'), ['p1', 'p2']);
      assert.deepEqual(q.getAll('fields').sort(), ['fixed_ip_address', 'floating_ip_address', 'id', 'port_id']);
      assert.deepEqual(await neutron.listFloatingIps([]), []);
      assert.equal(seen.length, 1);
    } finally {
      await srv.close();
    }
  });

  it('a Neutron without the L3 API (404: no router service plugin) means no floating IPs, as nova treats it', async () => {
    const { srv, neutron } = await serve((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ NeutronError: { type: 'HTTPNotFound', message: 'The resource could not be found.' } }));
    });
    try {
      assert.deepEqual(await neutron.listFloatingIps(['p1']), []);
    } finally {
      await srv.close();
    }
  });

  it('any other failure is an error with its NEUTRON_* code', async () => {
    const { srv, neutron } = await serve((_req, res) => {
      res.writeHead(503);
      res.end();
    });
    try {
      await assert.rejects(neutron.listFloatingIps(['p1']), (err: Error & { code?: string }) => err.code === 'NEUTRON_UNAVAILABLE');
    } finally {
      await srv.close();
    }
  });
});
