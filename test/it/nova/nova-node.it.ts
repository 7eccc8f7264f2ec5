import assert from 'node:assert/strict';
import { containersOf, removeContainersOf } from '../../../tools/lib/stack.js';
import { startNovaNode, type NovaNode } from '../../../tools/lib/nova-node.js';
import { loadTestCloud, openstack } from '../../support/cloud.js';
import { waitUntil } from '../../support/waits.js';

/**
 * A Berth node joining the test cloud of tools/dev/cloud.sh (real keystone, placement, glance,
 * nova-api, nova-conductor, nova-scheduler), driven only by the stock python-openstackclient
 * (nova-control-plane.md §5). The node's host name is stable across runs, as a real node's is:
 * its Service and ComputeNode rows are found again, not duplicated.
 */
let HOST = 'berth-it';
const REGISTRY = process.env.BERTH_TEST_REGISTRY ?? '127.0.0.1:5000';

interface ServiceRow {
  Binary: string;
  Host: string;
  State: string;
  Status: string;
}
interface HypervisorRow {
  'Hypervisor Hostname': string;
  'Hypervisor Type': string;
  State: string;
}
interface ServerView {
  id: string;
  status: string;
  'OS-EXT-SRV-ATTR:host'?: string;
  fault?: { message?: string };
}

describe('a Berth node in a real Nova (control_plane = nova)', function () {
  this.timeout(600_000);
  let node: NovaNode;
  const servers: string[] = [];
  const snapshots: string[] = [];

  const show = (id: string) => openstack<ServerView>(['server', 'show', id], { json: true });
  const waitStatus = (id: string, status: string, ms = 90_000) =>
    waitUntil(
      async () => {
        const s = await show(id);
        if (s.status === 'ERROR') throw new Error(`server ${id} went to ERROR: ${s.fault?.message ?? '?'}`);
        return s.status === status ? s : undefined;
      },
      ms,
      `server ${id} ${status}`,
      1000,
    );
  const serviceState = async () =>
    (await openstack<ServiceRow[]>(['compute', 'service', 'list', '--service', 'nova-compute'], { json: true })).find((r) => r.Host === HOST);
  const createServer = async (name: string): Promise<ServerView> => {
    const s = await openstack<ServerView>(
      ['server', 'create', '--image', node.imageId, '--flavor', 'm1.tiny', '--nic', 'none', '--host', HOST, '--wait', name],
      { json: true, timeoutMs: 180_000 },
    );
    servers.push(s.id);
    return s;
  };
  const containerState = async (id: string) => (await containersOf(id))[0]?.State;

  before(async () => {
    const cloud = loadTestCloud();
    // A second test cloud (BERTH_CLOUD_PORT_OFFSET) shares dockerd with the first: its node needs
    // a host name of its own, or each node would reap the other's containers as deleted by its nova.
    const offset = cloud.vars.BERTH_CLOUD_PORT_OFFSET ?? '0';
    if (offset !== '0') HOST = `berth-it-${offset}`;
    // The image path of nova mode: registry → glance-bridge → the cloud's Glance, booted from there.
    node = await startNovaNode(cloud, { host: HOST, registry: REGISTRY });
  });

  after(async () => {
    for (const id of servers) await openstack(['server', 'delete', '--wait', id], { timeoutMs: 120_000 }).catch(() => undefined);
    for (const id of snapshots) await openstack(['image', 'delete', id]).catch(() => undefined);
    for (const id of servers) await removeContainersOf(id);
    await node?.stop();
  });

  it('registers: compute service list shows it up, hypervisor list shows it', async () => {
    const row = await waitUntil(
      async () => {
        const r = await serviceState();
        return r?.State === 'up' ? r : undefined;
      },
      60_000,
      'nova-compute up',
      1000,
    );
    assert.equal(row.Status, 'enabled');
    // Mapped to cell1 by the scheduler's periodic discovery. Below 2.88 the list asks no node for its
    // uptime (an RPC call that waits 60 s on a node another test just stopped, still counted up).
    const hv = await waitUntil(
      async () =>
        (await openstack<HypervisorRow[]>(['--os-compute-api-version', '2.87', 'hypervisor', 'list'], { json: true })).find(
          (h) => h['Hypervisor Hostname'] === HOST,
        ),
      60_000,
      'hypervisor listed',
      2000,
    );
    assert.equal(hv['Hypervisor Type'], 'docker');
    assert.equal(hv.State, 'up');
  });

  it('keeps a Placement provider with its inventory and traits; compute service set --disable adds COMPUTE_STATUS_DISABLED', async () => {
    const placement = ['--os-placement-api-version', '1.39'];
    const [rp] = await openstack<Array<{ uuid: string }>>([...placement, 'resource', 'provider', 'list', '--name', HOST], { json: true });
    assert.ok(rp, 'resource provider named after the node');
    const inventory = await openstack<Array<{ resource_class: string; total: number; reserved: number }>>(
      [...placement, 'resource', 'provider', 'inventory', 'list', rp.uuid],
      { json: true },
    );
    assert.deepEqual(inventory.map((i) => i.resource_class).sort(), ['DISK_GB', 'MEMORY_MB', 'VCPU']);
    assert.equal(inventory.find((i) => i.resource_class === 'MEMORY_MB')!.reserved, node.config.compute.reserved_host_memory_mb);
    const traits = async () =>
      (await openstack<Array<{ name: string }>>([...placement, 'resource', 'provider', 'trait', 'list', rp.uuid], { json: true })).map((t) => t.name);
    assert.ok((await traits()).includes('COMPUTE_NODE'));
    // nova-api calls set_host_enabled on the node, which keeps the scheduler's request filter in step.
    await openstack(['compute', 'service', 'set', '--disable', '--disable-reason', 'berth test', HOST, 'nova-compute']);
    await waitUntil(async () => (await traits()).includes('COMPUTE_STATUS_DISABLED'), 30_000, 'disabled trait', 1000);
    await openstack(['compute', 'service', 'set', '--enable', HOST, 'nova-compute']);
    await waitUntil(async () => !(await traits()).includes('COMPUTE_STATUS_DISABLED'), 30_000, 'disabled trait removed', 1000);
  });

  it('server create --nic none --wait reaches ACTIVE with a running container', async () => {
    const s = await createServer('berth-it-vm1');
    assert.equal(s.status, 'ACTIVE');
    assert.equal(s['OS-EXT-SRV-ATTR:host'], HOST);
    assert.equal(await containerState(s.id), 'running');
  });

  it("stop, start, pause, unpause and reboot keep Nova's record and the container in step", async () => {
    const id = servers[0]!;
    await openstack(['server', 'stop', id]);
    await waitStatus(id, 'SHUTOFF');
    assert.equal(await containerState(id), 'exited');
    await openstack(['server', 'start', id]);
    await waitStatus(id, 'ACTIVE');
    assert.equal(await containerState(id), 'running');
    await openstack(['server', 'pause', id]);
    await waitStatus(id, 'PAUSED');
    assert.equal(await containerState(id), 'paused');
    await openstack(['server', 'unpause', id]);
    await waitStatus(id, 'ACTIVE');
    await openstack(['server', 'reboot', '--wait', id], { timeoutMs: 120_000 });
    assert.equal((await show(id)).status, 'ACTIVE');
    assert.equal(await containerState(id), 'running');
  });

  it("console log show returns the guest's console", async () => {
    const log = await waitUntil(
      async () => {
        const l = await openstack(['console', 'log', 'show', servers[0]!]);
        return l.includes('berth-guest: booted') ? l : undefined;
      },
      30_000,
      'boot line on the console',
      1000,
    );
    assert.match(log, /berth-guest: booted/);
  });

  it('server image create lands an active snapshot in Glance', async () => {
    const img = await openstack<{ id: string }>(['server', 'image', 'create', '--name', `berth-it-snap-${Date.now()}`, '--wait', servers[0]!], {
      json: true,
      timeoutMs: 180_000,
    });
    snapshots.push(img.id);
    const shown = await openstack<{ status: string; container_format: string; disk_format: string; size: number }>(['image', 'show', img.id], { json: true });
    assert.equal(shown.status, 'active');
    assert.equal(shown.container_format, 'docker');
    assert.equal(shown.disk_format, 'raw');
    assert.ok(shown.size > 0);
    await waitStatus(servers[0]!, 'ACTIVE', 30_000);
  });

  it('server delete removes the container and the Placement allocations', async () => {
    const id = servers[0]!;
    await openstack(['server', 'delete', '--wait', id], { timeoutMs: 120_000 });
    assert.deepEqual(await containersOf(id), []);
    const allocations = await openstack<unknown[]>(['--os-placement-api-version', '1.12', 'resource', 'provider', 'allocation', 'show', id], { json: true });
    assert.deepEqual(allocations, []);
  });

  it('a stopped node goes down within service_down_time; restarted, it is up with its instances intact and reaps what nova deleted meanwhile', async () => {
    const s = await createServer('berth-it-vm2');
    const gone = await createServer('berth-it-vm3');
    await node.stopCompute();
    await waitUntil(async () => (await serviceState())?.State === 'down', 90_000, 'nova-compute down', 2000);
    assert.equal(await containerState(s.id), 'running', 'the instance outlives its compute service');
    // With the node down, nova-api deletes the server by itself; the container stays behind.
    await openstack(['server', 'delete', '--wait', gone.id], { timeoutMs: 120_000 });
    assert.equal(await containerState(gone.id), 'running');
    await node.startCompute();
    await waitUntil(async () => (await serviceState())?.State === 'up', 60_000, 'nova-compute up again', 1000);
    assert.equal((await show(s.id)).status, 'ACTIVE');
    assert.equal(await containerState(s.id), 'running');
    await waitUntil(async () => (await containersOf(gone.id)).length === 0, 60_000, "the deleted server's container reaped", 1000);
  });
});
