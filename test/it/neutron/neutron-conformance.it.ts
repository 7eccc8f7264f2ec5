import { randomBytes } from 'node:crypto';
import { keystoneSession } from '../../../common/keystone/index.js';
import { HttpNeutron } from '../../../driver/neutron/http.js';
import { neutronConformance } from '../../conformance/neutron.js';
import { loadTestCloud, openstack, serviceCredentials } from '../../support/cloud.js';
import { floatingIpFor, publicNetwork, routerFor, type TestRouter } from './routers.js';

/**
 * The test cloud's real Neutron (tools/dev/cloud.sh) through HttpNeutron with the cloud's nova
 * service user, as a compute node is configured; the suite's network is made and deleted here
 * with the stock client as the cloud's admin, and for floating IPs a router from it to the cloud's
 * external network.
 */
neutronConformance('neutron', async () => {
  const cloud = loadTestCloud();
  const session = keystoneSession(serviceCredentials(cloud, cloud.nova));
  const host = cloud.vars.BERTH_CLOUD_NEUTRON_HOST;
  if (!host)
    throw new Error(
      `${cloud.state}/cloud.env has no BERTH_CLOUD_NEUTRON_HOST: the cloud runs without Neutron (tools/dev/cloud.sh stop && tools/dev/cloud.sh start)`,
    );
  // Before anything is made: a cloud without routers fails here, leaving nothing behind.
  const publicNetId = await publicNetwork(cloud);
  const suffix = randomBytes(4).toString('hex');
  // 10.78.x.0/24: beside the cloud's own test network (10.77.x.0/24)
  const third = parseInt(suffix.slice(0, 2), 16);
  const cidr = `10.78.${third}.0/24`;
  const gateway = `10.78.${third}.1`;
  const dns = [`10.78.${third}.53`];
  const routes = [{ destination: '192.0.2.0/24', nexthop: `10.78.${third}.254` }];
  const name = `berth-conf-${suffix}`;
  const net = await openstack<{ id: string; mtu: number }>(['network', 'create', name], { json: true });
  const subnet = await openstack<{ id: string }>(
    [
      'subnet',
      'create',
      '--network',
      net.id,
      '--subnet-range',
      cidr,
      '--dns-nameserver',
      dns[0]!,
      '--host-route',
      `destination=192.0.2.0/24,gateway=${routes[0]!.nexthop}`,
      name,
    ],
    { json: true },
  );
  const project = await openstack<{ id: string }>(['project', 'show', cloud.admin.projectName], { json: true });
  let router: TestRouter | undefined;
  const fips: string[] = [];
  return {
    neutron: new HttpNeutron(session, 'public'),
    network: { id: net.id, subnetId: subnet.id, cidr, gateway, mtu: net.mtu, dns, routes },
    projectId: project.id,
    host,
    async associateFloatingIp(portId) {
      router ??= await routerFor(publicNetId, subnet.id, name);
      const fip = await floatingIpFor(publicNetId, portId);
      fips.push(fip.id);
      return fip;
    },
    async disassociateFloatingIp(id) {
      await openstack(['floating', 'ip', 'unset', '--port', id]);
    },
    async cleanup() {
      if (fips.length) await openstack(['floating', 'ip', 'delete', ...fips]).catch(() => undefined);
      await router?.remove();
      const ports = await openstack<Array<{ ID: string }>>(['port', 'list', '--network', net.id], { json: true });
      if (ports.length) await openstack(['port', 'delete', ...ports.map((p) => p.ID)]);
      await openstack(['network', 'delete', net.id]);
    },
  };
});
