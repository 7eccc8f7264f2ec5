import assert from 'node:assert/strict';
import { LABEL_HOST } from '../../../agent/runtime/types.js';
import { containersOf, removeContainersOf } from '../../../tools/lib/stack.js';
import { startNovaNode, type NovaNode } from '../../../tools/lib/nova-node.js';
import { loadTestCloud, novaClient, openstack } from '../../support/cloud.js';
import { waitUntil } from '../../support/waits.js';

const REGISTRY = process.env.BERTH_TEST_REGISTRY ?? '127.0.0.1:5000';

interface ServiceRow {
  Binary: string;
  Host: string;
  State: string;
}
interface ServerView {
  id: string;
  status: string;
  'OS-EXT-SRV-ATTR:host'?: string;
  fault?: { message?: string };
}
interface MigrationRow {
  'Migration Type'?: string;
  Type?: string;
  Status: string;
  'Source Compute': string;
  'Dest Compute': string;
}

/**
 * `openstack server evacuate` with two Berth nodes joined to the test cloud (real nova-api,
 * conductor, scheduler, Placement): node A's compute service stops and is forced down
 * (compute service set --down, microversion 2.11), the server is rebuilt on node B; A's compute
 * service comes back, removes its leftover container and completes nova's migration.
 */
describe('openstack server evacuate between two Berth nodes in a real Nova', function () {
  this.timeout(600_000);
  let a: NovaNode | undefined;
  let b: NovaNode | undefined;
  let serverId: string | undefined;
  let hosts: [string, string];

  const show = (id: string) => openstack<ServerView>(['server', 'show', id], { json: true });
  const serviceUp = async (host: string) =>
    (await openstack<ServiceRow[]>(['compute', 'service', 'list', '--service', 'nova-compute'], { json: true })).find((r) => r.Host === host)?.State === 'up';

  before(async () => {
    const cloud = loadTestCloud();
    const offset = cloud.vars.BERTH_CLOUD_PORT_OFFSET ?? '0';
    hosts = offset === '0' ? ['berth-evac-a', 'berth-evac-b'] : [`berth-evac-a-${offset}`, `berth-evac-b-${offset}`];
    a = await startNovaNode(cloud, { host: hosts[0], registry: REGISTRY });
    b = await startNovaNode(cloud, { host: hosts[1], registry: REGISTRY });
    // A run stopped midway may have left a node forced down.
    for (const h of hosts) await openstack(['--os-compute-api-version', '2.11', 'compute', 'service', 'set', '--up', h, 'nova-compute']).catch(() => undefined);
    for (const h of hosts) await waitUntil(() => serviceUp(h), 90_000, `${h} up`, 1000);
  });

  after(async () => {
    for (const h of hosts ?? [])
      await openstack(['--os-compute-api-version', '2.11', 'compute', 'service', 'set', '--up', h, 'nova-compute']).catch(() => undefined);
    if (serverId) {
      await openstack(['server', 'delete', '--wait', serverId], { timeoutMs: 120_000 }).catch(() => undefined);
      await removeContainersOf(serverId);
    }
    await a?.stop();
    await b?.stop();
  });

  it('rebuilds the server of a node forced down on the other node; the node back removes its leftover only', async () => {
    const created = await openstack<ServerView>(
      ['server', 'create', '--image', a!.imageId, '--flavor', 'm1.tiny', '--nic', 'none', '--host', hosts[0], '--wait', 'berth-it-evacuee'],
      { json: true, timeoutMs: 180_000 },
    );
    serverId = created.id;
    assert.equal(created['OS-EXT-SRV-ATTR:host'], hosts[0]);

    await a!.stopCompute();
    await openstack(['--os-compute-api-version', '2.11', 'compute', 'service', 'set', '--down', hosts[0], 'nova-compute']);
    await waitUntil(async () => !(await serviceUp(hosts[0])), 30_000, `${hosts[0]} down`, 1000);
    await novaClient(['--os-compute-api-version', '2.29', 'evacuate', serverId, hosts[1]]);
    const moved = await waitUntil(
      async () => {
        const s = await show(serverId!);
        if (s.status === 'ERROR') throw new Error(`evacuation failed: ${s.fault?.message ?? '?'}`);
        return s.status === 'ACTIVE' && s['OS-EXT-SRV-ATTR:host'] === hosts[1] ? s : undefined;
      },
      120_000,
      'server ACTIVE on node B',
      1000,
    );
    assert.equal(moved['OS-EXT-SRV-ATTR:host'], hosts[1]);
    const both = await containersOf(serverId);
    assert.deepEqual(both.map((c) => [c.Labels[LABEL_HOST], c.State]).sort(), [
      [hosts[0], 'running'],
      [hosts[1], 'running'],
    ]);

    await a!.startCompute();
    // nova-api refused this once right after the evacuation ("Failed to set service state to up"): a bounded retry.
    await waitUntil(
      () =>
        openstack(['--os-compute-api-version', '2.11', 'compute', 'service', 'set', '--up', hosts[0], 'nova-compute']).then(
          () => true,
          () => false,
        ),
      30_000,
      `${hosts[0]} no longer forced down`,
      2000,
    );
    await waitUntil(async () => (await containersOf(serverId!)).length === 1, 60_000, "node A's leftover container removed", 1000);
    assert.deepEqual(
      (await containersOf(serverId)).map((c) => [c.Labels[LABEL_HOST], c.State]),
      [[hosts[1], 'running']],
    );
    const migrations = await openstack<MigrationRow[]>(['--os-compute-api-version', '2.59', 'server', 'migration', 'list', '--server', serverId], {
      json: true,
    });
    assert.deepEqual(
      migrations.map((m) => [m['Migration Type'] ?? m.Type, m.Status, m['Source Compute'], m['Dest Compute']]),
      [['evacuation', 'completed', hosts[0], hosts[1]]],
    );
    assert.equal((await show(serverId)).status, 'ACTIVE');
  });
});
