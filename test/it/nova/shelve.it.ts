import assert from 'node:assert/strict';
import { containersOf, removeContainersOf } from '../../../tools/lib/stack.js';
import { startNovaNode, type NovaNode } from '../../../tools/lib/nova-node.js';
import { execIn } from '../agent/docker-helpers.js';
import { loadTestCloud, openstack } from '../../support/cloud.js';
import { waitUntil } from '../../support/waits.js';

/**
 * Shelve, offload and unshelve of a server on a Berth node in the test cloud, driven by the stock
 * python-openstackclient: nova-api makes the `<name>-shelved` snapshot in Glance and casts
 * shelve_instance, the node offloads at once (shelved_offload_time 0), and nova's conductor
 * schedules the unshelve back onto the node (the test image requires a trait only this node's
 * resource provider carries, as tools/dev/tempest.sh pins its image).
 */
let HOST = 'berth-it-shelve';
const TRAIT = 'CUSTOM_BERTH_IT_SHELVE';
const REGISTRY = process.env.BERTH_TEST_REGISTRY ?? '127.0.0.1:5000';

interface ServerView {
  id: string;
  name: string;
  status: string;
  'OS-EXT-SRV-ATTR:host'?: string | null;
  fault?: { message?: string };
}

describe('shelve and unshelve of a server on a Berth node in a real Nova', function () {
  this.timeout(600_000);
  let node: NovaNode;
  const servers: string[] = [];

  const show = (id: string) => openstack<ServerView>(['server', 'show', id], { json: true });
  const waitStatus = (id: string, status: string, ms = 180_000) =>
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
  const allocations = async (id: string) =>
    openstack<Array<{ resource_provider: string }>>(['--os-placement-api-version', '1.12', 'resource', 'provider', 'allocation', 'show', id], { json: true });

  before(async () => {
    const cloud = loadTestCloud();
    const offset = cloud.vars.BERTH_CLOUD_PORT_OFFSET ?? '0';
    if (offset !== '0') HOST = `berth-it-shelve-${offset}`;
    node = await startNovaNode(cloud, { host: HOST, registry: REGISTRY });
    const rp = await waitUntil(
      async () => (await openstack<Array<{ uuid: string }>>(['resource', 'provider', 'list', '--name', HOST], { json: true }))[0]?.uuid,
      120_000,
      `resource provider ${HOST}`,
      1000,
    );
    await openstack(['--os-placement-api-version', '1.6', 'trait', 'create', TRAIT]);
    const traits = (
      await openstack<Array<{ name: string }>>(['--os-placement-api-version', '1.6', 'resource', 'provider', 'trait', 'list', rp], { json: true })
    ).map((t) => t.name);
    const args = [...new Set([...traits, TRAIT])].flatMap((t) => ['--trait', t]);
    await openstack(['--os-placement-api-version', '1.6', 'resource', 'provider', 'trait', 'set', ...args, rp]);
    await openstack(['image', 'set', '--property', `trait:${TRAIT}=required`, node.imageId]);
  });

  after(async () => {
    for (const id of servers) await openstack(['server', 'delete', '--wait', id], { timeoutMs: 120_000 }).catch(() => undefined);
    for (const id of servers) {
      // A snapshot left by a failed run.
      const left = await openstack<Array<{ ID: string }>>(['image', 'list', '--property', `instance_uuid=${id}`], { json: true }).catch(() => []);
      for (const img of left) await openstack(['image', 'delete', img.ID]).catch(() => undefined);
      await removeContainersOf(id);
    }
    await node?.stop();
  });

  it("shelve: the container gone, the allocations released, SHELVED_OFFLOADED on no host; unshelve: ACTIVE on the node with the tenant's file, the snapshot deleted", async () => {
    const s = await openstack<ServerView>(
      ['server', 'create', '--image', node.imageId, '--flavor', 'm1.tiny', '--nic', 'none', '--wait', 'berth-it-shelve-vm'],
      {
        json: true,
        timeoutMs: 180_000,
      },
    );
    servers.push(s.id);
    assert.equal(s.status, 'ACTIVE');
    assert.equal(s['OS-EXT-SRV-ATTR:host'], HOST);
    const [c] = await containersOf(s.id);
    assert.ok(c);
    await execIn(c.Id, ['sh', '-c', `echo kept-${s.id} > /root/tenant-file`]);
    assert.ok((await allocations(s.id)).length > 0);

    await openstack(['server', 'shelve', s.id]);
    const shelved = await waitStatus(s.id, 'SHELVED_OFFLOADED');
    assert.equal(shelved['OS-EXT-SRV-ATTR:host'] ?? null, null, 'on no host');
    assert.deepEqual(await containersOf(s.id), [], 'the container is gone');
    assert.deepEqual(await allocations(s.id), [], 'the Placement allocations are released');
    const snaps = await openstack<Array<{ ID: string; Name: string; Status: string }>>(['image', 'list', '--name', `${s.name}-shelved`], { json: true });
    assert.equal(snaps.length, 1);
    assert.equal(snaps[0]!.Status, 'active');
    const actions = await openstack<Array<{ Action: string }>>(['server', 'event', 'list', s.id], { json: true });
    assert.ok(actions.some((a) => a.Action === 'shelve'));

    await openstack(['server', 'unshelve', s.id]);
    const back = await waitStatus(s.id, 'ACTIVE');
    assert.equal(back['OS-EXT-SRV-ATTR:host'], HOST);
    const [again] = await containersOf(s.id);
    assert.ok(again);
    assert.equal((await execIn(again.Id, ['cat', '/root/tenant-file'])).trim(), `kept-${s.id}`);
    assert.ok((await allocations(s.id)).length > 0, 'allocated again');
    await waitUntil(
      async () => (await openstack<unknown[]>(['image', 'list', '--name', `${s.name}-shelved`], { json: true })).length === 0 || undefined,
      30_000,
      'the shelved snapshot deleted',
      1000,
    );
  });
});
