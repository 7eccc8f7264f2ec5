import { openstack, type TestCloud } from '../../support/cloud.js';

/**
 * Routers and floating IPs on the test cloud's Neutron (the router service plugin, the L3 agent and
 * the external network `public` of tools/dev/cloud-public.sh), made with the stock client as the
 * cloud's admin, for the integration tests.
 */

/**
 * The id of the cloud's external network; fails naming the fix when the cloud has no router
 * service plugin or no external network (a cloud started before they were added to cloud.sh).
 */
export async function publicNetwork(cloud: TestCloud): Promise<string> {
  const name = cloud.vars.BERTH_CLOUD_PUBLIC_NET;
  const restart = 'restart it with tools/dev/cloud.sh stop && tools/dev/cloud.sh start';
  if (!name) throw new Error(`${cloud.state}/cloud.env has no BERTH_CLOUD_PUBLIC_NET: the test cloud has no external network for floating IPs; ${restart}`);
  const extensions = await openstack<Array<{ Alias: string }>>(['extension', 'list', '--network'], { json: true });
  if (!extensions.some((e) => e.Alias === 'router'))
    throw new Error(`the test cloud's Neutron has no router extension (service_plugins lacks router, no L3 agent); ${restart}`);
  return (await openstack<{ id: string }>(['network', 'show', name], { json: true })).id;
}

export interface TestRouter {
  id: string;
  /** Detaches the subnet and deletes the router; what is already gone is fine. */
  remove(): Promise<void>;
}

/** A router with its gateway on the external network and an interface on `subnetId`. */
export async function routerFor(publicNetId: string, subnetId: string, name: string): Promise<TestRouter> {
  const { id } = await openstack<{ id: string }>(['router', 'create', name], { json: true });
  const remove = async () => {
    await openstack(['router', 'remove', 'subnet', id, subnetId]).catch(() => undefined);
    await openstack(['router', 'delete', id]).catch(() => undefined);
  };
  try {
    await openstack(['router', 'set', '--external-gateway', publicNetId, id]);
    await openstack(['router', 'add', 'subnet', id, subnetId]);
  } catch (err) {
    await remove();
    throw err;
  }
  return { id, remove };
}

/** A floating IP of the external network associated with the port; its id and address. */
export async function floatingIpFor(publicNetId: string, portId: string): Promise<{ id: string; address: string }> {
  const f = await openstack<{ id: string; floating_ip_address: string }>(['floating', 'ip', 'create', '--port', portId, publicNetId], { json: true });
  return { id: f.id, address: f.floating_ip_address };
}
