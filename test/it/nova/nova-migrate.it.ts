import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { LABEL_HOST } from '../../../agent/runtime/types.js';
import { createLogger } from '../../../common/log.js';
import { containersOf, removeContainersOf, type DockerContainer } from '../../../tools/lib/stack.js';
import { startNovaNode, type NovaNode } from '../../../tools/lib/nova-node.js';
import { loadTestCloud, neutronSection, openstack } from '../../support/cloud.js';
import { waitUntil } from '../../support/waits.js';

const exec = promisify(execFile);
const REGISTRY = process.env.BERTH_TEST_REGISTRY ?? '127.0.0.1:5000';
/** Only these two nodes carry it; the test image requires it, so the scheduler picks between them alone. */
const TRAIT = 'CUSTOM_BERTH_IT_MOVES';

interface ServerView {
  id: string;
  status: string;
  flavor?: string | { original_name?: string };
  'OS-EXT-SRV-ATTR:host'?: string;
  addresses?: Record<string, string[]> | string;
  fault?: { message?: string };
}
interface MigrationView {
  UUID?: string;
  Id?: number;
  Type?: string;
  'Migration Type'?: string;
  Status: string;
  'Source Compute': string;
  'Dest Compute': string;
}
interface AllocationRow {
  resource_provider: string;
  resources: Record<string, number>;
}

/** The addresses of a server on one network, whichever shape the client prints them in. */
function addressesOn(s: ServerView, net: string): string[] {
  if (typeof s.addresses === 'object' && s.addresses) return s.addresses[net] ?? [];
  const m = new RegExp(`${net}=([^;]+)`).exec(s.addresses ?? '');
  return m ? m[1]!.split(',').map((x) => x.trim()) : [];
}

/**
 * `openstack server migrate` and `openstack server resize` between two Berth nodes joined to
 * the test cloud (real nova-api, conductor, scheduler, Placement): cold migration then confirm,
 * resize onto the other node then revert; each step checked as nova-compute leaves it: the
 * server's status and host, the Migration's status, the allocations of the instance consumer and
 * of the migration consumer in Placement, the containers of both nodes, and the tenant's data.
 * A server on the cloud's Neutron network keeps its port through the moves: the same address
 * inside and in `server show`, and another server still reached.
 */
describe('openstack server migrate / resize between two Berth nodes in a real Nova', function () {
  this.timeout(900_000);
  let a: NovaNode | undefined;
  let b: NovaNode | undefined;
  let serverId: string | undefined;
  const others: string[] = [];
  let hosts: [string, string];
  let net = '';
  const rp: Record<string, string> = {};

  const show = (id: string) => openstack<ServerView>(['server', 'show', id], { json: true });
  const flavorName = (s: ServerView) => (typeof s.flavor === 'string' ? s.flavor.split(' ')[0] : s.flavor?.original_name);
  const migrations = async (id: string) =>
    openstack<MigrationView[]>(['--os-compute-api-version', '2.59', 'server', 'migration', 'list', '--server', id], { json: true });
  /** Per host name: the resources a consumer holds there. */
  const allocations = async (consumer: string): Promise<Record<string, Record<string, number>>> => {
    const rows = await openstack<AllocationRow[]>(['--os-placement-api-version', '1.12', 'resource', 'provider', 'allocation', 'show', consumer], {
      json: true,
    });
    const byUuid = Object.fromEntries(Object.entries(rp).map(([h, u]) => [u, h]));
    return Object.fromEntries(rows.map((r) => [byUuid[r.resource_provider] ?? r.resource_provider, r.resources]));
  };
  const setService = (host: string, how: '--enable' | '--disable') => openstack(['compute', 'service', 'set', how, host, 'nova-compute']);
  const byHost = async (id: string): Promise<Record<string, DockerContainer>> =>
    Object.fromEntries((await containersOf(id)).map((c) => [c.Labels[LABEL_HOST]!, c]));
  const sh = async (c: DockerContainer, script: string): Promise<string> => (await exec('docker', ['exec', c.Id, 'sh', '-c', script])).stdout.trim();
  const waitStatus = (id: string, status: string, host: string, what: string) =>
    waitUntil(
      async () => {
        const s = await show(id);
        if (s.status === 'ERROR') throw new Error(`${what} failed: ${s.fault?.message ?? '?'}`);
        return s.status === status && s['OS-EXT-SRV-ATTR:host'] === host ? s : undefined;
      },
      180_000,
      `server ${status} on ${host} (${what})`,
      1000,
    );
  const TINY = { VCPU: 1, MEMORY_MB: 512, DISK_GB: 1 };
  const SMALL = { VCPU: 1, MEMORY_MB: 1024, DISK_GB: 2 };

  before(async () => {
    const cloud = loadTestCloud();
    const offset = cloud.vars.BERTH_CLOUD_PORT_OFFSET ?? '0';
    hosts = offset === '0' ? ['berth-moves-a', 'berth-moves-b'] : [`berth-moves-a-${offset}`, `berth-moves-b-${offset}`];
    // BERTH_TEST_LOG=1: both nodes' logs on stderr.
    const log = (h: string) => (process.env.BERTH_TEST_LOG ? { log: createLogger(h, { destination: 2 }) } : {});
    net = cloud.vars.BERTH_CLOUD_NEUTRON_NET ?? '';
    const neutron = neutronSection(cloud);
    if (!neutron || !net) throw new Error(`${cloud.state}/cloud.env names no Neutron network: the cloud runs without Neutron`);
    // Neutron's ports bound to this machine's linuxbridge agent (the same for both nodes here).
    const overrides = { neutron, compute: { vif_plugging_timeout: 180 } };
    a = await startNovaNode(cloud, { host: hosts[0], registry: REGISTRY, overrides, ...log(hosts[0]) });
    b = await startNovaNode(cloud, { host: hosts[1], registry: REGISTRY, overrides, ...log(hosts[1]) });
    for (const h of hosts) await setService(h, '--enable').catch(() => undefined);
    await openstack(['--os-placement-api-version', '1.6', 'trait', 'create', TRAIT]);
    for (const h of hosts) {
      await waitUntil(
        async () => {
          const list = await openstack<Array<{ uuid: string; name: string }>>(['resource', 'provider', 'list', '--name', h], { json: true });
          return list[0]?.uuid;
        },
        90_000,
        `${h}'s resource provider`,
        1000,
      ).then((u) => (rp[h] = u));
      const traits = (
        await openstack<Array<{ name: string }>>(['--os-placement-api-version', '1.6', 'resource', 'provider', 'trait', 'list', rp[h]!], { json: true })
      ).map((t) => t.name);
      await openstack([
        '--os-placement-api-version',
        '1.6',
        'resource',
        'provider',
        'trait',
        'set',
        ...[...traits, TRAIT].flatMap((t) => ['--trait', t]),
        rp[h]!,
      ]);
      await waitUntil(
        async () =>
          (await openstack<Array<{ 'Hypervisor Hostname': string; State: string }>>(['hypervisor', 'list'], { json: true })).some(
            (x) => x['Hypervisor Hostname'] === h && x.State === 'up',
          ),
        120_000,
        `hypervisor ${h} up`,
        2000,
      );
    }
    await openstack(['image', 'set', '--property', `trait:${TRAIT}=required`, a.imageId]);
  });

  after(async () => {
    for (const h of hosts ?? []) await setService(h, '--enable').catch(() => undefined);
    for (const id of [serverId, ...others]) {
      if (!id) continue;
      await openstack(['server', 'delete', '--wait', id], { timeoutMs: 120_000 }).catch(() => undefined);
      await removeContainersOf(id);
    }
    await a?.stop();
    await b?.stop();
  });

  let checksum = '';
  it('boots a server on node A and writes data into it', async () => {
    const created = await openstack<ServerView>(
      ['server', 'create', '--image', a!.imageId, '--flavor', 'm1.tiny', '--nic', 'none', '--host', hosts[0], '--wait', 'berth-it-mover'],
      { json: true, timeoutMs: 180_000 },
    );
    serverId = created.id;
    assert.equal(created['OS-EXT-SRV-ATTR:host'], hosts[0]);
    const c = (await byHost(serverId))[hosts[0]]!;
    checksum = await sh(c, 'dd if=/dev/urandom of=/data.bin bs=1k count=256 2>/dev/null && echo moved > /marker && md5sum /data.bin');
    assert.deepEqual(await allocations(serverId), { [hosts[0]]: TINY });
  });

  it('cold-migrates it to node B (VERIFY_RESIZE), then confirm: the source container and the migration allocations go', async () => {
    await openstack(['--os-compute-api-version', '2.56', 'server', 'migrate', '--host', hosts[1], serverId!]);
    await waitStatus(serverId!, 'VERIFY_RESIZE', hosts[1], 'cold migration');
    const [m] = await migrations(serverId!);
    assert.ok(m?.UUID);
    assert.deepEqual([m['Type'] ?? m['Migration Type'], m.Status, m['Source Compute'], m['Dest Compute']], ['migration', 'finished', hosts[0], hosts[1]]);
    // As nova leaves a finished move: the instance holds the destination, the migration the source.
    assert.deepEqual(await allocations(serverId!), { [hosts[1]]: TINY });
    assert.deepEqual(await allocations(m.UUID), { [hosts[0]]: TINY });
    const during = await byHost(serverId!);
    assert.equal(during[hosts[0]]?.State, 'exited');
    assert.equal(during[hosts[1]]?.State, 'running');
    assert.equal(await sh(during[hosts[1]]!, 'cat /marker && md5sum /data.bin'), `moved\n${checksum}`);

    await openstack(['server', 'resize', 'confirm', serverId!]);
    await waitStatus(serverId!, 'ACTIVE', hosts[1], 'confirm');
    await waitUntil(async () => (await migrations(serverId!))[0]?.Status === 'confirmed', 60_000, 'migration confirmed', 1000);
    await waitUntil(async () => !(await byHost(serverId!))[hosts[0]], 60_000, "node A's container removed", 1000);
    assert.deepEqual(await allocations(serverId!), { [hosts[1]]: TINY });
    assert.deepEqual(await allocations(m.UUID), {});
    const after = await byHost(serverId!);
    assert.deepEqual(Object.keys(after), [hosts[1]]);
    assert.equal(await sh(after[hosts[1]]!, 'cat /marker && md5sum /data.bin'), `moved\n${checksum}`);
  });

  it('resizes it onto node A with a bigger flavor (VERIFY_RESIZE), then revert: back on B with its flavor, data and allocations', async () => {
    // Node B disabled: the scheduler must pick the other node (the cloud allows resizes to the same host).
    await setService(hosts[1], '--disable');
    try {
      await openstack(['server', 'resize', '--flavor', 'm1.small', serverId!]);
      const moved = await waitStatus(serverId!, 'VERIFY_RESIZE', hosts[0], 'resize');
      assert.equal(flavorName(moved), 'm1.small');
    } finally {
      await setService(hosts[1], '--enable');
    }
    const m = (await migrations(serverId!)).find((x) => (x['Type'] ?? x['Migration Type']) === 'resize')!;
    assert.deepEqual([m.Status, m['Source Compute'], m['Dest Compute']], ['finished', hosts[1], hosts[0]]);
    assert.deepEqual(await allocations(serverId!), { [hosts[0]]: SMALL });
    assert.deepEqual(await allocations(m.UUID!), { [hosts[1]]: TINY });
    const during = await byHost(serverId!);
    assert.equal(during[hosts[1]]?.State, 'exited');
    assert.equal(during[hosts[0]]?.State, 'running');
    assert.equal(await sh(during[hosts[0]]!, 'cat /marker && md5sum /data.bin'), `moved\n${checksum}`);

    await openstack(['server', 'resize', 'revert', serverId!]);
    const back = await waitStatus(serverId!, 'ACTIVE', hosts[1], 'revert');
    assert.equal(flavorName(back), 'm1.tiny');
    await waitUntil(async () => (await migrations(serverId!)).find((x) => x.UUID === m.UUID)?.Status === 'reverted', 60_000, 'migration reverted', 1000);
    await waitUntil(async () => !(await byHost(serverId!))[hosts[0]], 60_000, "node A's new container removed", 1000);
    assert.deepEqual(await allocations(serverId!), { [hosts[1]]: TINY });
    assert.deepEqual(await allocations(m.UUID!), {});
    const after = await byHost(serverId!);
    assert.deepEqual(Object.keys(after), [hosts[1]]);
    assert.equal(after[hosts[1]]?.State, 'running');
    assert.equal(await sh(after[hosts[1]]!, 'cat /marker && md5sum /data.bin'), `moved\n${checksum}`);
  });
  it('moves a server on a Neutron network to node B and back (revert), then to B (confirm): its address and its reach to another server stay', async () => {
    const create = async (name: string, host: string) => {
      const s = await openstack<ServerView>(
        ['server', 'create', '--image', a!.imageId, '--flavor', 'm1.tiny', '--network', net, '--host', host, '--wait', name],
        { json: true, timeoutMs: 420_000 },
      );
      others.push(s.id);
      return s;
    };
    const peer = await create('berth-it-mover-peer', hosts[1]);
    const mover = await create('berth-it-mover-net', hosts[0]);
    const [peerAddress] = addressesOn(await show(peer.id), net);
    const [address] = addressesOn(await show(mover.id), net);
    assert.ok(peerAddress && address);
    // The peer answers TCP 7777 with its host name (guests have no CAP_NET_RAW: no ping).
    await exec('docker', ['exec', '-d', (await byHost(peer.id))[hosts[1]]!.Id, 'nc', '-ll', '-p', '7777', '-e', 'hostname']);
    const eth0 = async (host: string) => {
      const c = (await byHost(mover.id))[host];
      return c ? sh(c, 'ip -4 -o addr show dev eth0').catch(() => '') : '';
    };
    const reachesPeer = (host: string) =>
      waitUntil(
        async () => {
          const c = (await byHost(mover.id))[host];
          return c ? (await sh(c, `nc -w 3 ${peerAddress} 7777 </dev/null`).catch(() => '')).length > 0 : false;
        },
        120_000,
        `the peer reached from the server on ${host}`,
        1000,
      );
    await reachesPeer(hosts[0]);
    await sh((await byHost(mover.id))[hosts[0]]!, 'echo moved > /marker');

    const migrateTo = async (host: string) => {
      await openstack(['--os-compute-api-version', '2.56', 'server', 'migrate', '--host', host, mover.id]);
      await waitStatus(mover.id, 'VERIFY_RESIZE', host, 'cold migration');
      await waitUntil(async () => (await eth0(host)).includes(`inet ${address}/`), 60_000, `eth0 of the server on ${host} has ${address}`, 1000);
      assert.deepEqual(addressesOn(await show(mover.id), net), [address]);
      await reachesPeer(host);
      assert.equal(await sh((await byHost(mover.id))[host]!, 'cat /marker'), 'moved');
    };
    await migrateTo(hosts[1]);
    await openstack(['server', 'resize', 'revert', mover.id]);
    await waitStatus(mover.id, 'ACTIVE', hosts[0], 'revert');
    await waitUntil(async () => !(await byHost(mover.id))[hosts[1]], 60_000, "node B's container removed", 1000);
    await waitUntil(async () => (await eth0(hosts[0])).includes(`inet ${address}/`), 60_000, `eth0 on ${hosts[0]} again`, 1000);
    await reachesPeer(hosts[0]);

    await migrateTo(hosts[1]);
    await openstack(['server', 'resize', 'confirm', mover.id]);
    await waitStatus(mover.id, 'ACTIVE', hosts[1], 'confirm');
    await waitUntil(async () => !(await byHost(mover.id))[hosts[0]], 60_000, "node A's container removed", 1000);
    // Node A's removal of its (stopped) container left node B's tap of the same port alone.
    await reachesPeer(hosts[1]);
    const ports = await openstack<Array<{ ID: string; Status: string }>>(['port', 'list', '--device-id', mover.id], { json: true });
    assert.equal(ports.length, 1);
    assert.equal(ports[0]!.Status, 'ACTIVE');
  });
});
