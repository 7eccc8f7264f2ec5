import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { NeutronPlumber, parkedName } from '../../../agent/network/neutron-vifs.js';
import { keystoneSession } from '../../../common/keystone/index.js';
import { silentLogger } from '../../../common/log.js';
import { allocateForInstance, deallocateForInstance } from '../../../driver/neutron/allocate.js';
import { HttpNeutron } from '../../../driver/neutron/http.js';
import { vifPlug, type ModelVif } from '../../../driver/neutron/network-info.js';
import { docker, execWithStatus, removeLabelled, TEST_IMAGE } from '../agent/docker-helpers.js';
import { loadTestCloud, openstack, serviceCredentials } from '../../support/cloud.js';
import { waitUntil } from '../../support/waits.js';

const LABEL = 'org.openstack.berth.test.neutron-preplug';
const run = promisify(execFile);

/**
 * A tap made before its guest exists (the agent's create makes it while the engine makes the
 * container) is wired by the test cloud's real linuxbridge agent on its own: the port goes ACTIVE
 * with the guest end still parked on the host, and the guest moved in afterwards gets the port's
 * address from Neutron's DHCP server through it.
 */
describe('Neutron wires a tap made before its container (real Neutron)', function () {
  this.timeout(180_000);
  const cloud = loadTestCloud();
  const host = cloud.vars.BERTH_CLOUD_NEUTRON_HOST ?? '';
  const plumber = new NeutronPlumber();
  let neutron: HttpNeutron;
  const uuid = randomUUID();
  let vifs: ModelVif[] = [];

  before(async () => {
    if (!host) throw new Error(`${cloud.state}/cloud.env has no BERTH_CLOUD_NEUTRON_HOST: the cloud runs without Neutron`);
    neutron = new HttpNeutron(keystoneSession(serviceCredentials(cloud, cloud.nova)));
  });

  after(async () => {
    for (const v of vifs) await plumber.detach(v.devname).catch(() => undefined);
    await deallocateForInstance(neutron, uuid, vifs).catch(() => undefined);
    await removeLabelled(LABEL).catch(() => undefined);
    plumber.close();
  });

  it('the port goes ACTIVE while the guest end is parked; the guest moved in later gets its address over DHCP', async () => {
    const networkId = (await openstack<{ id: string }>(['network', 'show', cloud.vars.BERTH_CLOUD_NEUTRON_NET ?? ''], { json: true })).id;
    const projectId = (await openstack<{ id: string }>(['project', 'show', cloud.admin.projectName], { json: true })).id;
    vifs = await allocateForInstance(
      neutron,
      { uuid, project_id: projectId, availability_zone: 'nova', security_groups: [] },
      [{ network_id: networkId, port_id: null, address: null }],
      host,
      silentLogger(),
    );
    const plug = vifPlug(vifs[0]!);
    const t0 = Date.now();
    await plumber.prepare(uuid, plug);
    await waitUntil(async () => (await neutron.showPort(plug.portId)).status === 'ACTIVE', 90_000, `port ${plug.portId} ACTIVE`, 250);
    process.stdout.write(`      tap made to port ACTIVE ${Date.now() - t0} ms, no container yet\n`);
    const { stdout } = await run('/usr/sbin/ip', ['-o', 'link', 'show', parkedName(plug.tap)]);
    assert.match(stdout, new RegExp(`link/ether ${plug.mac}`), 'the guest end is still parked on the host');

    const made = await docker<{ Id: string }>('POST', '/containers/create', {
      Image: TEST_IMAGE,
      Cmd: ['sleep', '600'],
      Labels: { [LABEL]: '1' },
      HostConfig: { NetworkMode: 'none' },
    });
    await docker('POST', `/containers/${made.body.Id}/start`);
    const info = await docker<{ NetworkSettings: { SandboxKey: string } }>('GET', `/containers/${made.body.Id}/json`);
    await plumber.attach({ uuid, netns: info.body.NetworkSettings.SandboxKey, ifname: 'eth0', vif: { ...plug, addresses: [], gateway: null, routes: [] } });
    const r = await execWithStatus(made.body.Id, ['udhcpc', '-i', 'eth0', '-n', '-q', '-t', '5', '-s', '/bin/true']);
    assert.equal(r.exitCode, 0, r.output);
    assert.match(r.output, new RegExp(`lease of ${plug.addresses[0]!.address.replace(/\./g, '\\.')} obtained`));
  });
});
