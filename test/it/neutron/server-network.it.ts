import assert from 'node:assert/strict';
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
interface PortRow {
  ID: string;
  Status: string;
  'Fixed IP Addresses': Array<{ ip_address: string }> | string;
}

/** The addresses of a server on one network, whichever shape the client prints them in. */
function addressesOn(s: ServerView, net: string): string[] {
  if (typeof s.addresses === 'object' && s.addresses) return s.addresses[net] ?? [];
  const m = new RegExp(`${net}=([^;]+)`).exec(s.addresses ?? '');
  return m ? m[1]!.split(',').map((a) => a.trim()) : [];
}

/**
 * `openstack server create --network` on a Berth node of the test cloud: nova-api and the
 * scheduler send the build, the node allocates a port on the cloud's real Neutron bound to this
 * machine's linuxbridge agent, the agent plugs it into the container, Neutron's
 * network-vif-plugged comes back through nova-api, and `server show` lists the address the
 * container has. Delete leaves no port and no tap.
 */
describe('a Berth node builds servers on Neutron networks (real nova, real Neutron)', function () {
  this.timeout(900_000);
  const cloud = loadTestCloud();
  const offset = cloud.vars.BERTH_CLOUD_PORT_OFFSET ?? '0';
  const HOST = offset === '0' ? 'berth-net-it' : `berth-net-it-${offset}`;
  const NET = cloud.vars.BERTH_CLOUD_NEUTRON_NET ?? '';
  let node: NovaNode;
  const servers: string[] = [];

  before(async () => {
    const l2Host = cloud.vars.BERTH_CLOUD_NEUTRON_HOST ?? '';
    if (!l2Host || !NET) throw new Error(`${cloud.state}/cloud.env has no BERTH_CLOUD_NEUTRON_HOST/NET: the cloud runs without Neutron`);
    node = await startNovaNode(cloud, {
      host: HOST,
      registry: REGISTRY,
      overrides: {
        neutron: neutronSection(cloud)!,
        compute: { vif_plugging_timeout: 180 },
      },
    });
    // Mapped to cell1 by the scheduler's periodic host discovery before it can be chosen.
    await waitUntil(() => hypervisorUp(HOST), 180_000, 'hypervisor listed and up', 2000);
  });

  after(async () => {
    for (const id of servers) await openstack(['server', 'delete', '--wait', id], { timeoutMs: 180_000 }).catch(() => undefined);
    for (const id of servers) await removeContainersOf(id);
    for (const id of servers) {
      for (const p of await openstack<PortRow[]>(['port', 'list', '--device-id', id], { json: true }).catch(() => []))
        await openstack(['port', 'delete', p.ID]).catch(() => undefined);
    }
    await node?.stop();
  });

  it('server create --network goes ACTIVE; server show lists the address the container has on eth0; the port is ACTIVE on this host; reboot and stop/start plug it again; delete leaves no port and no tap', async () => {
    const name = `berth-net-${Date.now()}`;
    const created = await openstack<ServerView>(
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
    const shown = await openstack<ServerView>(['server', 'show', created.id], { json: true });
    assert.equal(shown.status, 'ACTIVE', shown.fault?.message);
    const [address] = addressesOn(shown, NET);
    assert.ok(address, `server show lists an address on ${NET}: ${JSON.stringify(shown.addresses)}`);

    const [container] = await containersOf(created.id);
    assert.ok(container, 'a container for the server');
    const inside = await execWithStatus(container.Id, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
    assert.equal(inside.exitCode, 0, inside.output);
    assert.match(inside.output, new RegExp(`inet ${address.replace(/\./g, '\\.')}/`), inside.output);

    const ports = await openstack<PortRow[]>(['port', 'list', '--device-id', created.id], { json: true });
    assert.equal(ports.length, 1);
    assert.equal(ports[0]!.Status, 'ACTIVE');
    const tap = `tap${ports[0]!.ID}`.slice(0, 14);
    await stat(`/sys/class/net/${tap}`);

    // A new start is a new network namespace: the agent plugs the port again, same address.
    const eth0Has = async () => {
      const [c] = await containersOf(created.id);
      const r = await execWithStatus(c!.Id, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
      return r.exitCode === 0 && r.output.includes(`inet ${address}/`);
    };
    await openstack(['server', 'reboot', '--hard', '--wait', created.id], { timeoutMs: 180_000 });
    await waitUntil(eth0Has, 30_000, 'eth0 plugged again after the reboot', 500);
    await openstack(['server', 'stop', created.id], { timeoutMs: 60_000 });
    await waitUntil(async () => (await openstack<ServerView>(['server', 'show', created.id], { json: true })).status === 'SHUTOFF', 120_000, 'SHUTOFF', 1000);
    await openstack(['server', 'start', created.id], { timeoutMs: 60_000 });
    await waitUntil(async () => (await openstack<ServerView>(['server', 'show', created.id], { json: true })).status === 'ACTIVE', 120_000, 'ACTIVE', 1000);
    await waitUntil(eth0Has, 30_000, 'eth0 plugged again after stop and start', 500);
    await stat(`/sys/class/net/${tap}`);

    await openstack(['server', 'delete', '--wait', created.id], { timeoutMs: 180_000 });
    assert.deepEqual(await openstack<PortRow[]>(['port', 'list', '--device-id', created.id], { json: true }), []);
    await waitUntil(
      async () =>
        stat(`/sys/class/net/${tap}`).then(
          () => undefined,
          () => true,
        ),
      30_000,
      'tap gone',
      500,
    );
    assert.deepEqual(await containersOf(created.id), []);
  });
});
