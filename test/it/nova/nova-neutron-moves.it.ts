import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { LABEL_HOST } from '../../../agent/runtime/types.js';
import { createLogger } from '../../../common/log.js';
import { containersOf, removeContainersOf, type DockerContainer } from '../../../tools/lib/stack.js';
import { startNovaNode, type NovaNode } from '../../../tools/lib/nova-node.js';
import { loadTestCloud, neutronSection, novaClient, openstack, type TestCloud } from '../../support/cloud.js';
import { waitUntil } from '../../support/waits.js';

const exec = promisify(execFile);
const REGISTRY = process.env.BERTH_TEST_REGISTRY ?? '127.0.0.1:5000';
/** Only these two nodes carry it; the test image requires it, so the scheduler picks between them alone. */
const TRAIT = 'CUSTOM_BERTH_IT_NETMOVES';

interface ServerView {
  id: string;
  status: string;
  'OS-EXT-SRV-ATTR:host'?: string | null;
  addresses?: Record<string, string[]> | string;
  fault?: { message?: string };
}
interface PortView {
  id: string;
  status: string;
  device_id: string;
  mac_address: string;
  binding_host_id?: string;
  'binding:host_id'?: string;
  fixed_ips: Array<{ ip_address: string }>;
}
interface MigrationRow {
  'Migration Type'?: string;
  Type?: string;
  Status: string;
  'Source Compute': string;
  'Dest Compute': string;
}

/** The addresses of a server on one network, whichever shape the client prints them in. */
function addressesOn(s: ServerView, net: string): string[] {
  if (typeof s.addresses === 'object' && s.addresses) return s.addresses[net] ?? [];
  const m = new RegExp(`${net}=([^;]+)`).exec(s.addresses ?? '');
  return m ? m[1]!.split(',').map((x) => x.trim()) : [];
}

/** The host end of a port's pair, and its guest end while parked in the host's namespace. */
const tapOf = (portId: string) => `tap${portId}`.slice(0, 14);
const parkedOf = (portId: string) => `vpk${portId}`.slice(0, 14);
const linkExists = (name: string) =>
  stat(`/sys/class/net/${name}`).then(
    () => true,
    () => false,
  );

/**
 * A server on the cloud's Neutron network moved between two Berth nodes joined to the test cloud
 * (real nova-api, conductor, scheduler, Placement, Neutron with its linuxbridge agent): shelved
 * and offloaded on node A then unshelved onto node B (microversion 2.91's `host`), and evacuated
 * from node A (its compute service stopped and forced down, its container left running as a
 * host cut off from the control plane leaves it, or stopped with it) onto node B, A returning
 * afterwards. Each move
 * keeps the server's port, its address inside the container and in `server show`, and its reach
 * (the network's DHCP server answers TCP from inside), with the one tap of the port on this
 * machine belonging to the destination's container and nothing left of the source's.
 *
 * Both nodes bind ports to the one linuxbridge agent of this machine, so `binding:host_id` is
 * that agent's host before and after each move.
 *
 * One pair of nodes per group of cases: the nodes run in this process, where the driver's database
 * models are bound to the last database opened, so a node's compute restarted twice would close
 * the database the other node uses; each group restarts node A's compute at most once.
 */
type MoveCase = 'unshelve' | 'evacuate-running' | 'evacuate-dead';
function movesBetweenTwoNodes(cases: MoveCase[]): void {
  describe(`Neutron servers moved between two Berth nodes in a real Nova: ${cases.join(', ')}`, function () {
    this.timeout(900_000);
    let cloud: TestCloud;
    let a: NovaNode | undefined;
    let b: NovaNode | undefined;
    const servers: string[] = [];
    let hosts: [string, string];
    let net = '';
    let l2Host = '';
    let dhcp = '';

    const show = (id: string) => openstack<ServerView>(['server', 'show', id], { json: true });
    const portOf = async (id: string): Promise<PortView> => {
      const list = await openstack<Array<{ ID: string }>>(['port', 'list', '--device-id', id], { json: true });
      assert.equal(list.length, 1, `one port of server ${id}`);
      return openstack<PortView>(['port', 'show', list[0]!.ID], { json: true });
    };
    const bindingHost = (p: PortView) => p['binding:host_id'] ?? p.binding_host_id;
    const byHost = async (id: string): Promise<Record<string, DockerContainer>> =>
      Object.fromEntries((await containersOf(id)).map((c) => [c.Labels[LABEL_HOST]!, c]));
    const sh = async (c: DockerContainer, script: string): Promise<string> => (await exec('docker', ['exec', c.Id, 'sh', '-c', script])).stdout.trim();
    const serviceUp = async (host: string) =>
      (await openstack<Array<{ Host: string; State: string }>>(['compute', 'service', 'list', '--service', 'nova-compute'], { json: true })).find(
        (r) => r.Host === host,
      )?.State === 'up';
    const forceDown = (host: string, how: '--up' | '--down') =>
      openstack(['--os-compute-api-version', '2.11', 'compute', 'service', 'set', how, host, 'nova-compute']);
    const waitStatus = (id: string, status: string, host: string | null, what: string) =>
      waitUntil(
        async () => {
          const s = await show(id);
          if (s.status === 'ERROR') throw new Error(`${what} failed: ${s.fault?.message ?? '?'}`);
          return s.status === status && (s['OS-EXT-SRV-ATTR:host'] ?? null) === host ? s : undefined;
        },
        240_000,
        `server ${status} on ${host ?? 'no host'} (${what})`,
        1000,
      );
    /** A call nova's clients do not make (unshelve onto a host, 2.91): the compute API with an admin token. */
    const computeAction = async (id: string, body: unknown, version: string): Promise<void> => {
      const token = (await openstack(['token', 'issue', '-f', 'value', '-c', 'id'])).trim();
      const res = await fetch(`${cloud.computeUrl}/servers/${id}/action`, {
        method: 'POST',
        headers: { 'X-Auth-Token': token, 'Content-Type': 'application/json', 'OpenStack-API-Version': `compute ${version}` },
        body: JSON.stringify(body),
      });
      if (res.status !== 202) throw new Error(`server action ${JSON.stringify(body)}: ${res.status} ${await res.text()}`);
    };

    /**
     * The port plugged into the server's container on `host` and into nothing else on this machine:
     * the container's eth0 has the port's MAC and address and is the peer of the port's one tap; no
     * guest end is left parked; the DHCP server answers from inside; Neutron has the port ACTIVE,
     * bound to this machine's L2 agent and to the server.
     */
    const assertPluggedOn = async (id: string, host: string, port: PortView): Promise<void> => {
      const address = port.fixed_ips[0]!.ip_address;
      const c = (await byHost(id))[host];
      assert.ok(c, `a container of ${id} on ${host}`);
      await waitUntil(
        async () => (await sh(c, 'ip -4 -o addr show dev eth0').catch(() => '')).includes(`inet ${address}/`),
        60_000,
        `eth0 of the server on ${host} has ${address}`,
        1000,
      );
      assert.equal(await sh(c, 'cat /sys/class/net/eth0/address'), port.mac_address);
      const tapIndex = (await readFile(`/sys/class/net/${tapOf(port.id)}/ifindex`, 'utf8')).trim();
      assert.equal(await sh(c, 'cat /sys/class/net/eth0/iflink'), tapIndex, `the tap of port ${port.id} is the peer of eth0 in ${host}'s container`);
      assert.equal(await linkExists(parkedOf(port.id)), false, 'no guest end left parked on the host');
      assert.deepEqual(addressesOn(await show(id), net), [address]);
      await waitUntil(
        async () => (await sh(c, `nc -w 3 ${dhcp} 53 </dev/null && echo ok`).catch(() => '')) === 'ok',
        120_000,
        `TCP to the DHCP server ${dhcp}:53 from the server on ${host}`,
        1000,
      );
      await waitUntil(async () => (await portOf(id)).status === 'ACTIVE', 60_000, `port ${port.id} ACTIVE`, 1000);
      const now = await portOf(id);
      assert.deepEqual([now.id, now.device_id, bindingHost(now), now.fixed_ips[0]?.ip_address], [port.id, id, l2Host, address]);
    };

    const create = async (name: string, host: string) => {
      const s = await openstack<ServerView>(
        ['server', 'create', '--image', a!.imageId, '--flavor', 'm1.tiny', '--network', net, '--host', host, '--wait', name],
        { json: true, timeoutMs: 420_000 },
      );
      servers.push(s.id);
      assert.equal(s['OS-EXT-SRV-ATTR:host'], host);
      const port = await portOf(s.id);
      await assertPluggedOn(s.id, host, port);
      return { id: s.id, port };
    };

    before(async () => {
      cloud = loadTestCloud();
      const offset = cloud.vars.BERTH_CLOUD_PORT_OFFSET ?? '0';
      hosts = offset === '0' ? ['berth-netmoves-a', 'berth-netmoves-b'] : [`berth-netmoves-a-${offset}`, `berth-netmoves-b-${offset}`];
      // BERTH_TEST_LOG=1: both nodes' logs on stderr.
      const log = (h: string) => (process.env.BERTH_TEST_LOG ? { log: createLogger(h, { destination: 2 }) } : {});
      net = cloud.vars.BERTH_CLOUD_NEUTRON_NET ?? '';
      l2Host = cloud.vars.BERTH_CLOUD_NEUTRON_HOST ?? '';
      const neutron = neutronSection(cloud);
      if (!neutron || !net || !l2Host) throw new Error(`${cloud.state}/cloud.env names no Neutron network: the cloud runs without Neutron`);
      const overrides = { neutron, compute: { vif_plugging_timeout: 180 } };
      a = await startNovaNode(cloud, { host: hosts[0], registry: REGISTRY, overrides, ...log(hosts[0]) });
      b = await startNovaNode(cloud, { host: hosts[1], registry: REGISTRY, overrides, ...log(hosts[1]) });
      // A run stopped midway may have left a node disabled or forced down.
      for (const h of hosts) {
        await openstack(['compute', 'service', 'set', '--enable', h, 'nova-compute']).catch(() => undefined);
        await forceDown(h, '--up').catch(() => undefined);
      }
      await openstack(['--os-placement-api-version', '1.6', 'trait', 'create', TRAIT]);
      for (const h of hosts) {
        const rp = await waitUntil(
          async () => (await openstack<Array<{ uuid: string }>>(['resource', 'provider', 'list', '--name', h], { json: true }))[0]?.uuid,
          90_000,
          `${h}'s resource provider`,
          1000,
        );
        const traits = (
          await openstack<Array<{ name: string }>>(['--os-placement-api-version', '1.6', 'resource', 'provider', 'trait', 'list', rp], { json: true })
        ).map((t) => t.name);
        const args = [...new Set([...traits, TRAIT])].flatMap((t) => ['--trait', t]);
        await openstack(['--os-placement-api-version', '1.6', 'resource', 'provider', 'trait', 'set', ...args, rp]);
        await waitUntil(() => serviceUp(h), 120_000, `${h} up`, 2000);
      }
      await openstack(['image', 'set', '--property', `trait:${TRAIT}=required`, a.imageId]);
      // The network's DHCP server: what a server reaches from inside.
      dhcp = await waitUntil(
        async () => {
          const list = await openstack<Array<{ ID: string; 'Fixed IP Addresses': Array<{ ip_address: string }> }>>(
            ['port', 'list', '--network', net, '--device-owner', 'network:dhcp'],
            { json: true },
          );
          return list[0]?.['Fixed IP Addresses']?.[0]?.ip_address;
        },
        120_000,
        'the DHCP port of the network',
        1000,
      );
    });

    after(async () => {
      for (const h of hosts ?? []) await forceDown(h, '--up').catch(() => undefined);
      for (const id of servers) {
        await openstack(['server', 'delete', '--wait', id], { timeoutMs: 120_000 }).catch(() => undefined);
        // A snapshot left by a failed shelve.
        const left = await openstack<Array<{ ID: string }>>(['image', 'list', '--property', `instance_uuid=${id}`], { json: true }).catch(() => []);
        for (const img of left) await openstack(['image', 'delete', img.ID]).catch(() => undefined);
        await removeContainersOf(id);
      }
      await a?.stop();
      await b?.stop();
    });

    if (cases.includes('unshelve'))
      it('shelve-offloads a server on node A and unshelves it onto node B (2.91 host): same port, address and reach; no tap or container left of A', async () => {
        const { id, port } = await create('berth-it-netmoves-shelve', hosts[0]);
        await openstack(['server', 'shelve', id]);
        await waitStatus(id, 'SHELVED_OFFLOADED', null, 'shelve');
        await waitUntil(async () => (await containersOf(id)).length === 0, 60_000, "node A's container removed", 1000);
        // The kernel removes the pair with the stopped container's namespace, in its own time.
        await waitUntil(async () => !(await linkExists(tapOf(port.id))), 30_000, 'the tap gone with the container', 500);
        const kept = await portOf(id);
        assert.deepEqual(
          [kept.id, kept.device_id, kept.fixed_ips[0]?.ip_address],
          [port.id, id, port.fixed_ips[0]!.ip_address],
          'the port is kept for the unshelve',
        );

        await computeAction(id, { unshelve: { host: hosts[1] } }, '2.91');
        await waitStatus(id, 'ACTIVE', hosts[1], 'unshelve onto node B');
        assert.deepEqual(Object.keys(await byHost(id)), [hosts[1]]);
        await assertPluggedOn(id, hosts[1], port);
        const shelved = await openstack<Array<{ ID: string }>>(['image', 'list', '--property', `instance_uuid=${id}`], { json: true });
        assert.deepEqual(shelved, [], 'the shelved snapshot is deleted');
      });

    /**
     * Node A's compute service stopped and forced down, the server evacuated onto node B, then A
     * back: its leftover container removed, B's plug of the port untouched, the migration completed.
     * `hostDies`: A's container stops too (the port goes DOWN and B waits for its
     * network-vif-plugged, which nova-api sends to the instance's host); otherwise it keeps running
     * with the port's tap until B's plug takes the tap over.
     */
    const evacuateFromA = async (name: string, hostDies: boolean): Promise<void> => {
      await waitUntil(() => serviceUp(hosts[0]), 60_000, `${hosts[0]} up`, 1000);
      const { id, port } = await create(name, hosts[0]);
      await a!.stopCompute();
      if (hostDies) {
        await exec('docker', ['stop', '-t', '1', (await byHost(id))[hosts[0]]!.Id]);
        await waitUntil(async () => (await portOf(id)).status === 'DOWN', 60_000, `port ${port.id} DOWN`, 1000);
      }
      await forceDown(hosts[0], '--down');
      await waitUntil(async () => !(await serviceUp(hosts[0])), 30_000, `${hosts[0]} down`, 1000);
      await novaClient(['--os-compute-api-version', '2.29', 'evacuate', id, hosts[1]]);
      await waitStatus(id, 'ACTIVE', hosts[1], 'evacuation');
      const both = await byHost(id);
      assert.deepEqual(Object.keys(both).sort(), [...hosts].sort(), "A's container is still there until A returns");
      assert.equal(both[hosts[0]]!.State, hostDies ? 'exited' : 'running');
      await assertPluggedOn(id, hosts[1], port);

      await a!.startCompute();
      // nova-api refused this once right after an evacuation ("Failed to set service state to up"): a bounded retry.
      await waitUntil(
        () =>
          forceDown(hosts[0], '--up').then(
            () => true,
            () => false,
          ),
        30_000,
        `${hosts[0]} no longer forced down`,
        2000,
      );
      await waitUntil(async () => !(await byHost(id))[hosts[0]], 90_000, "node A's leftover container removed", 1000);
      await assertPluggedOn(id, hosts[1], port);
      const migrations = await openstack<MigrationRow[]>(['--os-compute-api-version', '2.59', 'server', 'migration', 'list', '--server', id], { json: true });
      assert.deepEqual(
        migrations.map((m) => [m['Migration Type'] ?? m.Type, m.Status, m['Source Compute'], m['Dest Compute']]),
        [['evacuation', 'completed', hosts[0], hosts[1]]],
      );
      assert.equal((await show(id)).status, 'ACTIVE');
    };

    if (cases.includes('evacuate-running'))
      it("evacuates a server of node A forced down (its container still running) onto node B; A back reaps its leftover without touching B's tap or the port", async () => {
        await evacuateFromA('berth-it-netmoves-evacuee', false);
      });

    if (cases.includes('evacuate-dead'))
      it("evacuates a server whose container went down with node A onto node B: B waits for the port's network-vif-plugged; A back removes its stopped container", async () => {
        await evacuateFromA('berth-it-netmoves-evacuee-dead', true);
      });
  });
}

movesBetweenTwoNodes(['unshelve', 'evacuate-running']);
movesBetweenTwoNodes(['evacuate-dead']);
