import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTestCloud, openstack, type TestCloud } from '../../support/cloud.js';
import { waitUntil } from '../../support/waits.js';

// The test cloud of tools/dev/cloud.sh, with no compute node: what the nova-mode tests build on
// (nova-control-plane.md §3 and §4.1).

interface ServiceRow {
  Binary: string;
  Host: string;
  State: string;
  Status: string;
}
interface AgentRow {
  'Agent Type': string;
  Alive: boolean;
}
interface FlavorRow {
  Name: string;
  RAM: number;
  Disk: number;
  VCPUs: number;
}
interface ServerView {
  id: string;
  status: string;
  fault?: { message?: string };
}

describe('test cloud (tools/dev/cloud.sh)', function () {
  this.timeout(180_000);
  let cloud: TestCloud;

  before(() => {
    cloud = loadTestCloud();
  });

  it('shows nova-conductor and nova-scheduler up', async () => {
    // After a restart the rows turn up with the services' first heartbeat.
    const rows = await waitUntil(
      async () => {
        const list = await openstack<ServiceRow[]>(['compute', 'service', 'list'], { json: true });
        const up = ['nova-conductor', 'nova-scheduler'].every((b) => list.some((r) => r.Binary === b && r.State === 'up'));
        return up ? list : undefined;
      },
      30_000,
      'nova-conductor and nova-scheduler up',
      2_000,
    );
    for (const binary of ['nova-conductor', 'nova-scheduler']) {
      assert.equal(rows.find((r) => r.Binary === binary)?.Status, 'enabled', binary);
    }
  });

  it('has the m1.tiny and m1.small flavors', async () => {
    const flavors = await openstack<FlavorRow[]>(['flavor', 'list'], { json: true });
    const pick = (name: string) => flavors.filter((f) => f.Name === name).map(({ Name, RAM, Disk, VCPUs }) => ({ Name, RAM, Disk, VCPUs }));
    assert.deepEqual(pick('m1.tiny'), [{ Name: 'm1.tiny', RAM: 512, Disk: 1, VCPUs: 1 }]);
    assert.deepEqual(pick('m1.small'), [{ Name: 'm1.small', RAM: 1024, Disk: 2, VCPUs: 1 }]);
  });

  it("runs Neutron behind Keystone, with the linuxbridge, DHCP, metadata and L3 agents alive on the cloud's network host", async () => {
    const anonymous = await fetch(`${cloud.neutronUrl}/v2.0/ports`);
    assert.equal(anonymous.status, 401);
    await anonymous.body?.cancel();
    const host = cloud.vars.BERTH_CLOUD_NEUTRON_HOST;
    assert.ok(host, "cloud.env names the Neutron agents' host");
    const agents = await openstack<AgentRow[]>(['network', 'agent', 'list', '--host', host], { json: true });
    const alive = agents.filter((a) => a.Alive === true).map((a) => a['Agent Type']);
    assert.deepEqual(alive.sort(), ['DHCP agent', 'L3 agent', 'Linux bridge agent', 'Metadata agent']);
  });

  it('has the external network public for routers and floating IPs, whose gateway address the host holds', async () => {
    const name = cloud.vars.BERTH_CLOUD_PUBLIC_NET;
    assert.ok(name, 'cloud.env names the external network (BERTH_CLOUD_PUBLIC_NET)');
    const net = await openstack<{ id: string; 'router:external': boolean; 'provider:network_type': string }>(['network', 'show', name], { json: true });
    assert.equal(net['router:external'], true);
    assert.equal(net['provider:network_type'], 'flat');
    const subnets = await openstack<Array<{ Subnet: string }>>(['subnet', 'list', '--network', net.id], { json: true });
    assert.deepEqual(
      subnets.map((s) => s.Subnet),
      [cloud.vars.BERTH_CLOUD_PUBLIC_CIDR],
    );
    const gateway = cloud.vars.BERTH_CLOUD_PUBLIC_GATEWAY ?? '';
    const local = Object.values(networkInterfaces()).flatMap((addrs) => (addrs ?? []).map((a) => a.address));
    assert.ok(local.includes(gateway), `the host holds ${gateway}`);
  });

  it('has the shared test network with its subnet, served by a DHCP port', async () => {
    const name = cloud.vars.BERTH_CLOUD_NEUTRON_NET ?? '';
    const net = await openstack<{ id: string; shared: boolean; status: string; mtu: number }>(['network', 'show', name], { json: true });
    assert.equal(net.shared, true);
    assert.equal(net.status, 'ACTIVE');
    // vxlan on top of the 1500-byte loopback-routed underlay
    assert.equal(net.mtu, 1450);
    const subnets = await openstack<Array<{ Subnet: string }>>(['subnet', 'list', '--network', net.id], { json: true });
    assert.deepEqual(
      subnets.map((s) => s.Subnet),
      [cloud.vars.BERTH_CLOUD_NEUTRON_CIDR],
    );
    await waitUntil(
      async () => (await openstack<unknown[]>(['port', 'list', '--network', net.id, '--device-owner', 'network:dhcp'], { json: true })).length === 1,
      60_000,
      'the DHCP port of the test network',
      1000,
    );
  });

  it('serves the placement version document', async () => {
    const res = await fetch(`${cloud.placementUrl}/`);
    assert.equal(res.status, 200);
    const doc = (await res.json()) as { versions: { id: string; status: string; max_version: string }[] };
    assert.equal(doc.versions[0]?.id, 'v1.0');
    assert.equal(doc.versions[0]?.status, 'CURRENT');
    assert.match(doc.versions[0]?.max_version ?? '', /^1\.\d+$/);
  });

  // Other integration tests register compute nodes in the same cloud, which stay up for nova's
  // service_down_time after them: a trait no node has keeps the scheduler from finding any host
  // whichever nodes are registered, on the same path as a cloud without compute nodes.
  describe('a server no compute node can take', () => {
    const suffix = randomUUID().slice(0, 8);
    const dir = mkdtempSync(join(tmpdir(), 'berth-cloud-it-'));
    let imageId: string | undefined;
    let serverId: string | undefined;

    after(async () => {
      try {
        if (serverId) await openstack(['server', 'delete', '--wait', serverId], { timeoutMs: 90_000 });
        if (imageId) await openstack(['image', 'delete', imageId]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('ends in ERROR with "No valid host"', async () => {
      // nova-api validates the image with glance, so even a server that cannot be placed needs one.
      const file = join(dir, 'tiny.img');
      writeFileSync(file, Buffer.alloc(1 << 20));
      const image = await openstack<{ id: string }>(
        [
          'image',
          'create',
          '--disk-format',
          'raw',
          '--container-format',
          'bare',
          '--property',
          'trait:CUSTOM_BERTH_IT_NO_SUCH_HOST=required',
          '--file',
          file,
          `berth-it-cloud-${suffix}`,
        ],
        { json: true },
      );
      imageId = image.id;
      const created = await openstack<ServerView>(
        ['server', 'create', '--flavor', 'm1.tiny', '--image', image.id, '--nic', 'none', `berth-it-novalidhost-${suffix}`],
        { json: true },
      );
      serverId = created.id;
      const server = await waitUntil(
        async () => {
          const view = await openstack<ServerView>(['server', 'show', created.id], { json: true });
          return view.status === 'ERROR' || view.status === 'ACTIVE' ? view : undefined;
        },
        60_000,
        `server ${created.id} to leave BUILD`,
        1_000,
      );
      assert.equal(server.status, 'ERROR');
      assert.match(server.fault?.message ?? '', /No valid host/);
    });
  });
});
