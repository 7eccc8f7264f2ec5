import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { NeutronPlumber } from '../../../agent/network/neutron-vifs.js';
import { keystoneSession } from '../../../common/keystone/index.js';
import { silentLogger } from '../../../common/log.js';
import { allocateForInstance, deallocateForInstance } from '../../../driver/neutron/allocate.js';
import { HttpNeutron } from '../../../driver/neutron/http.js';
import { vifPlug, type ModelVif } from '../../../driver/neutron/network-info.js';
import { docker, execWithStatus, removeLabelled, TEST_IMAGE } from '../agent/docker-helpers.js';
import { loadTestCloud, openstack, serviceCredentials } from '../../support/cloud.js';
import { waitUntil } from '../../support/waits.js';

const LABEL = 'org.openstack.berth.test.neutron-plug';

/**
 * Containers plugged into the test cloud's real Neutron like os-vif plugs VMs: ports allocated
 * and bound by the compute side's allocation (HttpNeutron), veth pairs made by the agent's
 * NeutronPlumber on the network's brq bridge; the linuxbridge agent wires them (ports ACTIVE,
 * security groups on the taps) and its DHCP server answers them.
 */
describe('Neutron VIFs plugged into containers (real Neutron)', function () {
  this.timeout(180_000);
  const cloud = loadTestCloud();
  const host = cloud.vars.BERTH_CLOUD_NEUTRON_HOST ?? '';
  const log = silentLogger();
  const plumber = new NeutronPlumber();
  let neutron: HttpNeutron;
  let networkId: string;
  let projectId: string;
  const instances: Array<{ uuid: string; vifs: ModelVif[]; container: string }> = [];
  const groups: string[] = [];

  before(async () => {
    if (!host) throw new Error(`${cloud.state}/cloud.env has no BERTH_CLOUD_NEUTRON_HOST: the cloud runs without Neutron`);
    neutron = new HttpNeutron(keystoneSession(serviceCredentials(cloud, cloud.nova)));
    networkId = (await openstack<{ id: string }>(['network', 'show', cloud.vars.BERTH_CLOUD_NEUTRON_NET ?? ''], { json: true })).id;
    projectId = (await openstack<{ id: string }>(['project', 'show', cloud.admin.projectName], { json: true })).id;
  });

  after(async () => {
    for (const i of instances) {
      await docker('DELETE', `/containers/${i.container}?force=1`, undefined, [404]).catch(() => undefined);
      for (const v of i.vifs) await plumber.detach(v.devname).catch(() => undefined);
      await deallocateForInstance(neutron, i.uuid, i.vifs).catch(() => undefined);
    }
    await removeLabelled(LABEL).catch(() => undefined);
    for (const g of groups) await openstack(['security', 'group', 'delete', g]).catch(() => undefined);
    plumber.close();
  });

  /** A running container without networking (only lo), its namespace file, and its ports. */
  async function instance(securityGroups: string[] = []): Promise<{ uuid: string; vifs: ModelVif[]; container: string; netns: string }> {
    const uuid = randomUUID();
    const vifs = await allocateForInstance(
      neutron,
      { uuid, project_id: projectId, availability_zone: 'nova', security_groups: securityGroups },
      [{ network_id: networkId, port_id: null, address: null }],
      host,
      log,
    );
    const made = await docker<{ Id: string }>('POST', '/containers/create', {
      Image: TEST_IMAGE,
      Cmd: ['sleep', '600'],
      Labels: { [LABEL]: '1' },
      HostConfig: { NetworkMode: 'none' },
    });
    const entry = { uuid, vifs, container: made.body.Id };
    instances.push(entry);
    await docker('POST', `/containers/${made.body.Id}/start`);
    const info = await docker<{ NetworkSettings: { SandboxKey: string } }>('GET', `/containers/${made.body.Id}/json`);
    return { ...entry, netns: info.body.NetworkSettings.SandboxKey };
  }

  const active = (portId: string) => waitUntil(async () => (await neutron.showPort(portId)).status === 'ACTIVE', 60_000, `port ${portId} ACTIVE`, 250);

  it('plugs a static address: the port goes ACTIVE and the guest has its address, MAC and MTU', async () => {
    const a = await instance();
    const plug = vifPlug(a.vifs[0]!);
    const t0 = Date.now();
    await plumber.attach({ uuid: a.uuid, netns: a.netns, ifname: 'eth0', vif: plug });
    const plugged = Date.now() - t0;
    await active(plug.portId);
    const toActive = Date.now() - t0;
    process.stdout.write(`      plug ${plugged} ms; plug to ACTIVE ${toActive} ms\n`);
    await stat(`/sys/class/net/${plug.tap}/brport`);
    const { output } = await execWithStatus(a.container, ['ip', '-o', 'addr', 'show', 'dev', 'eth0']);
    assert.match(output, new RegExp(` ${plug.addresses[0]!.address.replace(/\./g, '\\.')}/24 `));
    const link = await execWithStatus(a.container, ['cat', '/sys/class/net/eth0/address', '/sys/class/net/eth0/mtu']);
    assert.deepEqual(link.output.trim().split('\n'), [plug.mac, '1450']);
  });

  it("gets the port's address from Neutron's DHCP server", async () => {
    const a = await instance();
    const plug = vifPlug(a.vifs[0]!);
    await plumber.attach({ uuid: a.uuid, netns: a.netns, ifname: 'eth0', vif: { ...plug, addresses: [], gateway: null, routes: [] } });
    await active(plug.portId);
    const r = await execWithStatus(a.container, ['udhcpc', '-i', 'eth0', '-n', '-q', '-t', '5', '-s', '/bin/true']);
    assert.equal(r.exitCode, 0, r.output);
    assert.match(r.output, new RegExp(`lease of ${plug.addresses[0]!.address.replace(/\./g, '\\.')} obtained`));
  });

  it('lets two instances on the network reach each other (default security group)', async () => {
    const [a, b] = [await instance(), await instance()];
    for (const x of [a, b]) await plumber.attach({ uuid: x.uuid, netns: x.netns, ifname: 'eth0', vif: vifPlug(x.vifs[0]!) });
    for (const x of [a, b]) await active(x.vifs[0]!.id);
    const target = vifPlug(b.vifs[0]!).addresses[0]!.address;
    const r = await execWithStatus(a.container, ['ping', '-c', '2', '-W', '3', target]);
    assert.equal(r.exitCode, 0, r.output);
  });

  it("enforces the port's security group on the tap: ping allowed, TCP/22 not, and rule changes at run time", async () => {
    const sg = `berth-sg-${randomUUID().slice(0, 8)}`;
    await openstack(['security', 'group', 'create', sg]);
    groups.push(sg);
    const icmp = await openstack<{ id: string }>(['security', 'group', 'rule', 'create', '--ingress', '--protocol', 'icmp', sg], { json: true });
    const server = await instance([sg]);
    const client = await instance();
    for (const x of [server, client]) await plumber.attach({ uuid: x.uuid, netns: x.netns, ifname: 'eth0', vif: vifPlug(x.vifs[0]!) });
    for (const x of [server, client]) await active(x.vifs[0]!.id);
    const started = await execWithStatus(server.container, ['sh', '-c', 'mkdir -p /tmp/www && echo berth > /tmp/www/index.html && httpd -p 22 -h /tmp/www']);
    assert.equal(started.exitCode, 0, started.output);
    const ip = vifPlug(server.vifs[0]!).addresses[0]!.address;
    const ping = () => execWithStatus(client.container, ['ping', '-c', '1', '-W', '2', ip]);
    // busybox's wget crashes in this static build: a GET through nc
    const get = (c: string, to: string) => execWithStatus(c, ['sh', '-c', `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${to} 22`]);
    const tcp22 = () => get(client.container, ip);
    assert.equal((await ping()).exitCode, 0, 'ping is allowed');
    assert.doesNotMatch((await tcp22()).output, /berth/, 'TCP/22 is not');
    // the server itself answers locally: only the filter on its tap stood in the way
    assert.match((await get(server.container, '127.0.0.1')).output, /\r?\n\r?\nberth\n$/);
    await openstack(['security', 'group', 'rule', 'create', '--ingress', '--protocol', 'tcp', '--dst-port', '22', sg]);
    await waitUntil(async () => /\r?\n\r?\nberth\n$/.test((await tcp22()).output), 60_000, 'TCP/22 allowed once the rule is added', 500);
    await openstack(['security', 'group', 'rule', 'delete', icmp.id]);
    await waitUntil(async () => (await ping()).exitCode !== 0, 60_000, 'ping refused once its rule is deleted', 500);
  });

  it('leaves no port and no tap after unplug and release', async () => {
    const a = await instance();
    const plug = vifPlug(a.vifs[0]!);
    await plumber.attach({ uuid: a.uuid, netns: a.netns, ifname: 'eth0', vif: plug });
    await active(plug.portId);
    await plumber.detach(plug.tap);
    assert.equal(await plumber.attached(plug.tap), false);
    const done = await deallocateForInstance(neutron, a.uuid, a.vifs);
    assert.deepEqual(done, { deleted: [plug.portId], unbound: [] });
    assert.deepEqual(await neutron.listPorts({ device_id: a.uuid }), []);
  });
});
