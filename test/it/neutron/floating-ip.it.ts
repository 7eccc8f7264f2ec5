import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { get } from 'node:http';
import { containersOf, removeContainersOf } from '../../../tools/lib/stack.js';
import { startNovaNode, type NovaNode } from '../../../tools/lib/nova-node.js';
import { execWithStatus } from '../agent/docker-helpers.js';
import { hypervisorUp, loadTestCloud, neutronSection, openstack } from '../../support/cloud.js';
import { waitUntil } from '../../support/waits.js';
import { publicNetwork, routerFor, type TestRouter } from './routers.js';

const REGISTRY = process.env.BERTH_TEST_REGISTRY ?? '127.0.0.1:5000';
const BUSYBOX = '/bin/busybox';

interface ServerView {
  id: string;
  status: string;
  addresses?: Record<string, string[]> | string;
  fault?: { message?: string };
}

function addressesOn(s: ServerView, net: string): string[] {
  if (typeof s.addresses === 'object' && s.addresses) return s.addresses[net] ?? [];
  const m = new RegExp(`${net}=([^;]+)`).exec(s.addresses ?? '');
  return m ? m[1]!.split(',').map((a) => a.trim()) : [];
}

/** One ICMP echo from the host (busybox's ping: the host has no other), answered within 1 s. */
const pings = (address: string): Promise<boolean> =>
  new Promise((resolve) => execFile(BUSYBOX, ['ping', '-c', '1', '-W', '1', address], { timeout: 5000 }, (err) => resolve(!err)));

/** The body of GET http://address:port/ from the host, or null when nothing answered within 2 s. */
const fetchFrom = (address: string, port: number): Promise<string | null> =>
  new Promise((resolve) => {
    const req = get({ host: address, port, path: '/', timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });

/**
 * Floating IPs on a Berth node (issue: a floating IP reaches the container from the host): a
 * tenant network behind a router whose gateway is on the cloud's external network `public`
 * (tools/dev/cloud-public.sh: the host holds that network's gateway address), a server on it built
 * by a Berth node, `server add floating ip`: Neutron's L3 agent forwards the floating address to the
 * port's fixed one, Neutron tells nova (network-changed) and the node saves the info cache again,
 * so `server show` lists the floating address; the host pings the guest and fetches from a TCP
 * listener in it through the floating IP, and the security group still filters (a port it does
 * not open stays shut). `server remove floating ip` ends it; deleting everything leaves no floating
 * IP, router or port.
 */
describe('floating IPs reach a Berth server from the host (real nova, real Neutron, L3 agent)', function () {
  this.timeout(900_000);
  const cloud = loadTestCloud();
  const offset = cloud.vars.BERTH_CLOUD_PORT_OFFSET ?? '0';
  const HOST = offset === '0' ? 'berth-fip-it' : `berth-fip-it-${offset}`;
  const suffix = randomBytes(3).toString('hex');
  const NAME = `berth-fip-${suffix}`;
  // 10.81.x.0/24: beside the cloud's test network (10.77) and the other tests' (10.78, 10.79)
  const CIDR = `10.81.${parseInt(suffix.slice(0, 2), 16)}.0/24`;
  let node: NovaNode | undefined;
  let publicNetId = '';
  let netId = '';
  let subnetId = '';
  let groupId = '';
  let router: TestRouter | undefined;
  const servers: string[] = [];
  const fips: string[] = [];

  before(async () => {
    if (!cloud.vars.BERTH_CLOUD_NEUTRON_HOST) throw new Error(`${cloud.state}/cloud.env has no BERTH_CLOUD_NEUTRON_HOST: the cloud runs without Neutron`);
    // Fails naming the fix on a cloud without the router plugin or the external network.
    publicNetId = await publicNetwork(cloud);
    netId = (await openstack<{ id: string }>(['network', 'create', NAME], { json: true })).id;
    subnetId = (await openstack<{ id: string }>(['subnet', 'create', '--network', netId, '--subnet-range', CIDR, NAME], { json: true })).id;
    router = await routerFor(publicNetId, subnetId, NAME);
    groupId = (await openstack<{ id: string }>(['security', 'group', 'create', NAME], { json: true })).id;
    await openstack(['security', 'group', 'rule', 'create', '--ingress', '--protocol', 'icmp', groupId], { json: true });
    await openstack(['security', 'group', 'rule', 'create', '--ingress', '--protocol', 'tcp', '--dst-port', '8080', groupId], { json: true });
    node = await startNovaNode(cloud, {
      host: HOST,
      registry: REGISTRY,
      overrides: { neutron: neutronSection(cloud)!, compute: { vif_plugging_timeout: 180 } },
    });
    await waitUntil(() => hypervisorUp(HOST), 180_000, 'hypervisor listed and up', 2000);
  });

  after(async () => {
    if (fips.length) await openstack(['floating', 'ip', 'delete', ...fips]).catch(() => undefined);
    for (const id of servers) await openstack(['server', 'delete', '--wait', id], { timeoutMs: 180_000 }).catch(() => undefined);
    for (const id of servers) await removeContainersOf(id);
    await router?.remove();
    if (netId) {
      const left = await openstack<Array<{ ID: string }>>(['port', 'list', '--network', netId, '--device-owner', 'compute:nova'], { json: true }).catch(
        () => [],
      );
      if (left.length) await openstack(['port', 'delete', ...left.map((p) => p.ID)]).catch(() => undefined);
      await openstack(['network', 'delete', netId]).catch(() => undefined);
    }
    if (groupId) await openstack(['security', 'group', 'delete', groupId]).catch(() => undefined);
    await node?.stop();
  });

  it('server add floating ip: server show lists it, the host pings the guest and reaches its TCP listener through it (a port the group does not open stays shut); remove floating ip ends it; delete leaves no floating IP, router or port', async () => {
    const created = await openstack<ServerView>(
      ['server', 'create', '--image', node!.imageId, '--flavor', 'm1.tiny', '--network', netId, '--security-group', NAME, '--host', HOST, '--wait', NAME],
      { json: true, timeoutMs: 420_000 },
    ).catch(async (err: unknown) => {
      const s = await openstack<ServerView>(['server', 'show', NAME], { json: true }).catch(() => null);
      if (s) servers.push(s.id);
      throw new Error(`server create failed: ${String(err)}; fault: ${s?.fault?.message ?? '?'}`);
    });
    servers.push(created.id);
    const [fixed] = addressesOn(created, NAME);
    assert.ok(fixed, `server create lists the fixed address on ${NAME}: ${JSON.stringify(created.addresses)}`);

    // Two listeners in the guest (busybox httpd forks into the background): 8080 is open in the
    // security group, 8081 is not.
    const [container] = await containersOf(created.id);
    assert.ok(container, 'a container for the server');
    const listen = await execWithStatus(container.Id, [
      'sh',
      '-c',
      'mkdir -p /tmp/www && echo berth-fip > /tmp/www/index.html && httpd -p 8080 -h /tmp/www && httpd -p 8081 -h /tmp/www',
    ]);
    assert.equal(listen.exitCode, 0, listen.output);

    const fip = await openstack<{ id: string; floating_ip_address: string }>(['floating', 'ip', 'create', publicNetId], { json: true });
    fips.push(fip.id);
    const address = fip.floating_ip_address;
    assert.equal(await pings(address), false, `${address} answers before it is associated`);
    await openstack(['server', 'add', 'floating', 'ip', created.id, address]);

    // Neutron's network-changed reaches the node through nova-api; the node saves the info cache.
    const shown = await waitUntil(
      async () => {
        const s = await openstack<ServerView>(['server', 'show', created.id], { json: true });
        return addressesOn(s, NAME).includes(address) ? s : undefined;
      },
      60_000,
      `server show listing ${address}`,
      1000,
    );
    assert.deepEqual(addressesOn(shown, NAME).sort(), [fixed, address].sort());

    await waitUntil(() => pings(address), 60_000, `the host pinging ${address}`, 500);
    assert.equal(await waitUntil(() => fetchFrom(address, 8080), 30_000, `GET http://${address}:8080/`, 500), 'berth-fip\n');
    assert.equal(await fetchFrom(address, 8081), null, 'port 8081, which the security group does not open, answered');

    await openstack(['server', 'remove', 'floating', 'ip', created.id, address]);
    await waitUntil(
      async () => !addressesOn(await openstack<ServerView>(['server', 'show', created.id], { json: true }), NAME).includes(address),
      60_000,
      `server show no longer listing ${address}`,
      1000,
    );
    await waitUntil(async () => !(await pings(address)), 30_000, `${address} no longer answering`, 500);
    assert.equal(await fetchFrom(address, 8080), null, 'the listener still answered through the disassociated floating IP');

    await openstack(['floating', 'ip', 'delete', fip.id]);
    await openstack(['server', 'delete', '--wait', created.id], { timeoutMs: 180_000 });
    await router!.remove();
    const floating = await openstack<Array<{ ID: string }>>(['floating', 'ip', 'list'], { json: true });
    assert.ok(!floating.some((f) => f.ID === fip.id), 'the floating IP is gone');
    const routers = await openstack<Array<{ ID: string }>>(['router', 'list'], { json: true });
    assert.ok(!routers.some((r) => r.ID === router!.id), 'the router is gone');
    // No server port and no router port is left on the tenant network (the DHCP agent's stays).
    assert.deepEqual(await openstack(['port', 'list', '--device-id', created.id], { json: true }), [], "the server's port is left");
    assert.deepEqual(
      await openstack(['port', 'list', '--network', netId, '--device-owner', 'network:router_interface'], { json: true }),
      [],
      'a router port is left',
    );
    assert.deepEqual(await containersOf(created.id), []);
  });
});
