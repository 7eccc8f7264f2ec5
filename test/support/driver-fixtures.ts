import { silentLogger } from '../../common/log.js';
import type { Endpoint } from '../../driver/rpc/dispatcher.js';
import { hostResources, type HostResources } from '../../driver/compute/resources.js';
import type { ConductorClient } from '../../driver/nova/conductor.js';
import type { PlacementClient } from '../../driver/nova/placement.js';
import { NovaControlPlane } from '../../driver/nova/plane.js';
import { Notifier, type NotifierOptions, type Publisher } from '../../driver/notify/notifier.js';

/** A host for the driver's tests: 4 vCPUs, `memory_mb` (1024) with `reserved_host_memory_mb` of it reserved, 10 GB, no overcommit. */
export function testResources(o: { memory_mb?: number; reserved_host_memory_mb?: number } = {}) {
  return hostResources(
    {
      vcpus: 4,
      memory_mb: o.memory_mb ?? 1024,
      disk_gb: 10,
      reserved_host_cpus: 0,
      reserved_host_memory_mb: o.reserved_host_memory_mb ?? 256,
      reserved_host_disk_mb: 0,
      cpu_allocation_ratio: 1,
      ram_allocation_ratio: 1,
      disk_allocation_ratio: 1,
    },
    '/',
  );
}

/** The host most driver unit tests run on: 1 GiB, 256 MiB of it reserved. */
export const TEST_RESOURCES = testResources();

/** oslo.messaging's rabbit options at their defaults, as the driver's unit tests pass them. */
export const TEST_RABBIT = {
  amqp_durable_queues: false,
  amqp_auto_delete: false,
  rabbit_ha_queues: false,
  rabbit_quorum_queue: false,
  rabbit_transient_queues_ttl: 1800,
};

/** nova's notifier as the driver's unit tests use it: exchange nova, messagingv2, nova's topics, on `publisher`. */
export function testNotifier(publisher: Publisher, host: string, o: Partial<NotifierOptions> = {}): Notifier {
  return new Notifier(publisher, {
    exchange: 'nova',
    host,
    format: 'versioned',
    driver: 'messagingv2',
    versionedTopic: 'versioned_notifications',
    legacyTopic: 'notifications',
    rabbit: TEST_RABBIT,
    log: silentLogger(),
    ...o,
  });
}

/** Nova's control plane of node `berth1` over the fake conductor and Placement, idle usage, periodic work far apart. */
export function testNovaPlane(o: { conductor: ConductorClient; placement: PlacementClient; resources: HostResources }): NovaControlPlane {
  return new NovaControlPlane({
    host: 'berth1',
    node: 'berth1',
    serviceVersion: 64,
    reportIntervalSeconds: 3600,
    updateIntervalSeconds: 3600,
    hostIp: '127.0.0.1',
    resources: o.resources,
    usage: async () => ({ vcpus_used: 0, memory_mb_used: 0, local_gb_used: 0, running_vms: 0, current_workload: 0 }),
    conductor: o.conductor,
    placement: o.placement,
    log: silentLogger(),
  });
}

/** The request context driver unit tests send with: a request id, as nova's context carries. */
export const TEST_CTX = { request_id: 'req-00000000-0000-4000-8000-000000000000' };

/**
 * Hands an RPC message (`method` and `args`, as tools/lib/nova-requests.ts builds them) to the
 * endpoint's handler as the dispatcher does: its arguments deserialized first when the endpoint
 * deserializes.
 */
export function deliver(ep: Endpoint, msg: Record<string, unknown>, ctx: Record<string, unknown> = TEST_CTX): Promise<unknown> {
  const spec = ep.methods[String(msg.method)]!;
  const args = msg.args as Record<string, unknown>;
  return Promise.resolve(spec.handler(ctx, ep.deserialize ? ep.deserialize(args, spec) : args));
}
