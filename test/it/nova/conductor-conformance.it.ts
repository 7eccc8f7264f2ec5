import { randomBytes } from 'node:crypto';
import { silentLogger } from '../../../common/log.js';
import { AmqpConductor, type ConductorClient } from '../../../driver/nova/conductor.js';
import { isPrimitive } from '../../../driver/nova/objects.js';
import { RemoteFailure, RpcCaller } from '../../../driver/rpc/caller.js';
import { rabbitDefaults } from '../../../driver/rpc/broker-connect.js';
import { AmqpTransport } from '../../../driver/rpc/amqp-transport.js';
import { conductorConformance } from '../../conformance/conductor.js';
import { loadTestCloud, openstack } from '../../support/cloud.js';

const RABBIT = { amqp_durable_queues: false, amqp_auto_delete: false, rabbit_ha_queues: false, rabbit_quorum_queue: false, rabbit_transient_queues_ttl: 1800 };
const PLACEMENT = ['--os-placement-api-version', '1.39'];

/**
 * Deletes the host's service through nova-api, which also removes its compute node and host
 * mapping. Zed's nova-api answers 500 (ValueError "No such provider") when a compute node has no
 * resource provider, so an empty provider is made for it just before: with no inventory it can
 * never be an allocation candidate, and the delete removes it again.
 */
async function forgetHost(conductor: ConductorClient, host: string): Promise<void> {
  let node: unknown = null;
  try {
    node = await conductor.objectClassActionVersions('ComputeNode', 'get_by_host_and_nodename', [host, host]);
  } catch (err) {
    if (!(err instanceof RemoteFailure && err.failureClass === 'ComputeHostNotFound')) throw err;
  }
  if (isPrimitive(node)) await openstack([...PLACEMENT, 'resource', 'provider', 'create', '--uuid', String(node['nova_object.data'].uuid), host]);
  const rows = await openstack<Array<{ ID: string }>>(['compute', 'service', 'list', '--host', host], { json: true });
  for (const row of rows) await openstack(['compute', 'service', 'delete', row.ID]);
}

/**
 * The real nova-conductor of the test cloud (tools/dev/cloud.sh), over the node's own transport
 * and caller. The host is a throwaway with no Placement provider while the suite runs, so the
 * scheduler can never pick it.
 */
conductorConformance('nova-conductor', async () => {
  const cloud = loadTestCloud();
  const host = `berth-conf-${randomBytes(4).toString('hex')}`;
  const transport = new AmqpTransport({
    url: cloud.transportUrl,
    rabbit: { ...rabbitDefaults(), rabbit_interval_max: 5 },
    prefetch: 10,
    log: silentLogger(),
    connectionName: host,
  });
  const conductor = new AmqpConductor(new RpcCaller(transport, 'nova', RABBIT), 'conductor', 30);
  void transport.start();
  await transport.waitReady(20_000);
  return {
    conductor,
    host,
    async cleanup() {
      try {
        await forgetHost(conductor, host);
      } finally {
        await transport.close();
      }
    },
  };
});
