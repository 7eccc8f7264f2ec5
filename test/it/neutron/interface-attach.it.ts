import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { containersOf, removeContainersOf } from '../../../tools/lib/stack.js';
import { startNovaNode, type NovaNode } from '../../../tools/lib/nova-node.js';
import { execWithStatus } from '../agent/docker-helpers.js';
import { hypervisorUp, loadTestCloud, neutronSection, openstack } from '../../support/cloud.js';
import { waitUntil } from '../../support/waits.js';

const REGISTRY = process.env.BERTH_TEST_REGISTRY ?? '127.0.0.1:5000';

interface ServerView {
  id: string;
  status: string;
  addresses?: Record<string, string[]> | string;
  fault?: { message?: string };
}
interface PortView {
  id: string;
  status: string;
  device_id: string;
  fixed_ips: Array<{ ip_address: string }>;
}

function addressesOn(s: ServerView, net: string): string[] {
  if (typeof s.addresses === 'object' && s.addresses) return s.addresses[net] ?? [];
  const m = new RegExp(`${net}=([^;]+)`).exec(s.addresses ?? '');
  return m ? m[1]!.split(',').map((a) => a.trim()) : [];
}

const gone = (path: string) =>
  stat(path).then(
    () => false,
    () => true,
  );

/**
 * `openstack server add network` / `server add port` / `server remove port` on a Berth node of
 * the test cloud: nova-api calls the node's attach_interface, which binds a port to this host,
 * plugs it into the running container as eth1 and saves the info cache (server show lists the
 * address); the address works from inside (the network's DHCP server answers a ping through
 * it); remove port unplugs it and deletes the port this node made, or unbinds the caller's.
 */
describe('inside a server on a Neutron network: metadata, interface attach and detach (Berth node, real nova, real Neutron)', function () {
  this.timeout(900_000);
  const cloud = loadTestCloud();
  const offset = cloud.vars.BERTH_CLOUD_PORT_OFFSET ?? '0';
  const HOST = offset === '0' ? 'berth-ifa-it' : `berth-ifa-it-${offset}`;
  const NET = cloud.vars.BERTH_CLOUD_NEUTRON_NET ?? '';
  const suffix = randomBytes(3).toString('hex');
  const NET2 = `berth-ifa-${suffix}`;
  const third = parseInt(suffix.slice(0, 2), 16);
  let node: NovaNode;
  let net2Id = '';
  const servers: string[] = [];
  const ports: string[] = [];

  before(async () => {
    const l2Host = cloud.vars.BERTH_CLOUD_NEUTRON_HOST ?? '';
    if (!l2Host || !NET) throw new Error(`${cloud.state}/cloud.env has no BERTH_CLOUD_NEUTRON_HOST/NET: the cloud runs without Neutron`);
    net2Id = (await openstack<{ id: string }>(['network', 'create', NET2], { json: true })).id;
    await openstack(['subnet', 'create', '--network', net2Id, '--subnet-range', `10.79.${third}.0/24`, NET2], { json: true });
    node = await startNovaNode(cloud, {
      host: HOST,
      registry: REGISTRY,
      overrides: {
        neutron: neutronSection(cloud)!,
        compute: { vif_plugging_timeout: 180 },
      },
    });
    await waitUntil(() => hypervisorUp(HOST), 180_000, 'hypervisor listed and up', 2000);
  });

  after(async () => {
    for (const id of servers) await openstack(['server', 'delete', '--wait', id], { timeoutMs: 180_000 }).catch(() => undefined);
    for (const id of servers) await removeContainersOf(id);
    for (const id of ports) await openstack(['port', 'delete', id]).catch(() => undefined);
    if (net2Id) {
      const left = await openstack<Array<{ ID: string }>>(['port', 'list', '--network', net2Id, '--device-owner', 'compute:nova'], { json: true }).catch(
        () => [],
      );
      for (const p of left) await openstack(['port', 'delete', p.ID]).catch(() => undefined);
      await openstack(['network', 'delete', net2Id]).catch(() => undefined);
    }
    await node?.stop();
  });

  let created: ServerView & { 'OS-EXT-SRV-ATTR:instance_name'?: string };
  let inside: (args: string[]) => ReturnType<typeof execWithStatus>;

  it("answers the metadata service from inside: meta_data.json with this server's uuid and the EC2 instance-id (Neutron's isolated metadata through the DHCP port)", async () => {
    const name = `berth-ifa-${Date.now()}`;
    created = await openstack<ServerView>(
      ['server', 'create', '--image', node.imageId, '--flavor', 'm1.tiny', '--network', NET, '--host', HOST, '--wait', name],
      {
        json: true,
        timeoutMs: 420_000,
      },
    ).catch(async (err: unknown) => {
      const s = await openstack<ServerView>(['server', 'show', name], { json: true }).catch(() => null);
      if (s) servers.push(s.id);
      throw new Error(`server create failed: ${String(err)}; fault: ${s?.fault?.message ?? '?'}`);
    });
    servers.push(created.id);
    const [container] = await containersOf(created.id);
    assert.ok(container, 'a container for the server');
    inside = (args: string[]) => execWithStatus(container.Id, args);
    // busybox's wget crashes in this static build: a GET through nc
    const get = async (path: string): Promise<string> =>
      (await inside(['sh', '-c', `printf 'GET ${path} HTTP/1.0\\r\\nHost: 169.254.169.254\\r\\n\\r\\n' | nc -w 5 169.254.169.254 80`])).output;
    const route = await inside(['ip', 'route', 'get', '169.254.169.254']);
    assert.match(route.output, / via \S+ dev eth0/, route.output);
    const meta = await waitUntil(
      async () => ((await get('/openstack/latest/meta_data.json')).match(/\r?\n\r?\n(\{.*\})\s*$/s) ?? [])[1],
      60_000,
      'meta_data.json',
      1000,
    );
    assert.equal((JSON.parse(meta) as { uuid: string }).uuid, created.id);
    const ec2 = await get('/latest/meta-data/instance-id');
    const shown = await openstack<{ 'OS-EXT-SRV-ATTR:instance_name': string }>(['server', 'show', created.id], { json: true });
    assert.match(ec2, new RegExp(`\\r?\\n\\r?\\ni-${shown['OS-EXT-SRV-ATTR:instance_name'].replace(/^instance-/, '')}$`), ec2);
  });

  it('server add network plugs eth1 with the address server show lists, which reaches its DHCP server; remove port unplugs it and deletes the port; a caller port is bound on add and kept unbound on remove; delete leaves no port, tap or bridge', async () => {
    assert.ok(created, 'the server of the first test');
    const portsOn = async (): Promise<PortView[]> =>
      (await openstack<Array<{ ID: string }>>(['port', 'list', '--device-id', created.id, '--network', net2Id], { json: true })).length
        ? Promise.all(
            (await openstack<Array<{ ID: string }>>(['port', 'list', '--device-id', created.id, '--network', net2Id], { json: true })).map((p) =>
              openstack<PortView>(['port', 'show', p.ID], { json: true }),
            ),
          )
        : [];

    // The network's DHCP server: the address a ping through eth1 goes to.
    const dhcp = await waitUntil(
      async () => {
        const list = await openstack<Array<{ ID: string; 'Fixed IP Addresses': Array<{ ip_address: string }> }>>(
          ['port', 'list', '--network', net2Id, '--device-owner', 'network:dhcp'],
          { json: true },
        );
        const ready = list[0] && (await openstack<PortView>(['port', 'show', list[0].ID], { json: true })).status === 'ACTIVE';
        return ready ? list[0]!['Fixed IP Addresses']?.[0]?.ip_address : undefined;
      },
      180_000,
      'the DHCP port of the second network',
      1000,
    );

    const t0 = Date.now();
    await openstack(['server', 'add', 'network', created.id, net2Id], { timeoutMs: 120_000 });
    const attachMs = Date.now() - t0;
    const [port] = await portsOn();
    assert.ok(port, 'a port of the server on the second network');
    const address = port.fixed_ips[0]!.ip_address;
    const tap = `/sys/class/net/tap${port.id}`.slice(0, '/sys/class/net/'.length + 14);
    await stat(tap);
    const eth1 = await inside(['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth1']);
    assert.match(eth1.output, new RegExp(`inet ${address.replace(/\./g, '\\.')}/24`), eth1.output);
    await waitUntil(async () => (await openstack<PortView>(['port', 'show', port.id], { json: true })).status === 'ACTIVE', 60_000, 'port ACTIVE', 500);
    const activeMs = Date.now() - t0;
    process.stdout.write(`      server add network ${attachMs} ms; to port ACTIVE ${activeMs} ms\n`);
    await waitUntil(
      async () => addressesOn(await openstack<ServerView>(['server', 'show', created.id], { json: true }), NET2).includes(address),
      30_000,
      'server show lists the new address',
      500,
    );
    // Guests have no CAP_NET_RAW (no ping): a TCP connection to the DHCP server's DNS port, through eth1.
    const reach = () => inside(['sh', '-c', `nc -w 3 ${dhcp} 53 </dev/null`]);
    await waitUntil(async () => (await reach()).exitCode === 0, 120_000, `TCP to ${dhcp}:53 through eth1`, 1000).catch(async (err: unknown) => {
      const diag = await inside(['sh', '-c', 'ip addr; ip route']);
      throw new Error(`${String(err)}\n${(await reach()).output}\n${diag.output}`);
    });

    await openstack(['server', 'remove', 'port', created.id, port.id], { timeoutMs: 120_000 });
    await waitUntil(async () => (await portsOn()).length === 0, 60_000, 'the port this node made is deleted', 500);
    await waitUntil(() => gone(tap), 30_000, 'tap removed', 250);
    assert.notEqual((await inside(['ip', 'link', 'show', 'eth1'])).exitCode, 0, 'no eth1 in the guest');
    await waitUntil(
      async () => addressesOn(await openstack<ServerView>(['server', 'show', created.id], { json: true }), NET2).length === 0,
      30_000,
      'server show no longer lists it',
      500,
    );

    // A port the caller made: bound to the server on add, unbound and kept on remove.
    const own = await openstack<PortView>(['port', 'create', '--network', net2Id, `berth-ifa-own-${suffix}`], { json: true });
    ports.push(own.id);
    await openstack(['server', 'add', 'port', created.id, own.id], { timeoutMs: 120_000 });
    assert.equal((await openstack<PortView>(['port', 'show', own.id], { json: true })).device_id, created.id);
    const again = await inside(['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth1']);
    assert.match(again.output, new RegExp(`inet ${own.fixed_ips[0]!.ip_address.replace(/\./g, '\\.')}/24`), again.output);
    await openstack(['server', 'remove', 'port', created.id, own.id], { timeoutMs: 120_000 });
    await waitUntil(async () => (await openstack<PortView>(['port', 'show', own.id], { json: true })).device_id === '', 60_000, 'the caller port unbound', 500);

    // Attached again, then the server deleted with it: no port and no tap (removed by the delete
    // itself, not later by the kernel), and the network's bridge goes with the network.
    await openstack(['server', 'add', 'network', created.id, net2Id], { timeoutMs: 120_000 });
    const taps = (await openstack<Array<{ ID: string }>>(['port', 'list', '--device-id', created.id], { json: true })).map(
      (p) => `/sys/class/net/${`tap${p.ID}`.slice(0, 14)}`,
    );
    assert.equal(taps.length, 2, 'eth0 and eth1 ports');
    await openstack(['server', 'delete', '--wait', created.id], { timeoutMs: 180_000 });
    assert.deepEqual(await openstack<unknown[]>(['port', 'list', '--device-id', created.id], { json: true }), []);
    for (const t of taps) assert.equal(await gone(t), true, `${t} removed by the delete`);
    await openstack(['port', 'delete', ...ports.splice(0)]);
    await openstack(['network', 'delete', net2Id]);
    const bridge = `/sys/class/net/${`brq${net2Id}`.slice(0, 14)}`;
    net2Id = '';
    await waitUntil(() => gone(bridge), 60_000, `${bridge} removed with its network`, 500);
  });
});
