import type { Config } from '../../conf/options.js';
import type { Logger } from '../../common/log.js';
import { keystoneSession } from '../../common/keystone/index.js';
import type { NodeUsage } from '../compute/control-plane.js';
import type { HostResources } from '../compute/resources.js';
import { RpcCaller } from '../rpc/caller.js';
import type { Transport } from '../rpc/transport.js';
import { AmqpConductor } from './conductor.js';
import { HttpPlacement } from './placement.js';
import { NovaControlPlane } from './plane.js';

export { NovaControlPlane } from './plane.js';

export interface NovaPlaneDeps {
  config: Config;
  transport: Transport;
  resources: HostResources;
  usage: () => Promise<NodeUsage>;
  log: Logger;
}

/** The nova control plane from the node's configuration: conductor over the node's transport, Placement via Keystone. */
export function createNovaPlane({ config: c, transport, resources, usage, log }: NovaPlaneDeps): NovaControlPlane {
  const caller = new RpcCaller(transport, c.DEFAULT.control_exchange, c.oslo_messaging_rabbit);
  return new NovaControlPlane({
    host: c.DEFAULT.host,
    node: c.DEFAULT.host,
    serviceVersion: c.nova.service_version,
    reportIntervalSeconds: c.nova.report_interval,
    updateIntervalSeconds: c.nova.update_resources_interval,
    hostIp: c.nova.host_ip,
    resources,
    usage,
    log,
    conductor: new AmqpConductor(caller, c.nova.conductor_topic, c.DEFAULT.rpc_response_timeout),
    placement: new HttpPlacement(keystoneSession(c.placement), c.placement.valid_interfaces),
  });
}
