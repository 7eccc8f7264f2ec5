import { join } from 'node:path';
import type { AgentClient } from '../agent/client/types.js';
import type { Config } from '../conf/options.js';
import type { Logger } from '../common/log.js';
import { openDriverDatabase } from './db/index.js';
import { ComputeManager } from './compute/manager.js';
import { InstanceStore } from './compute/store.js';
import { baseApiEndpoint, computeEndpoint } from './compute/endpoint.js';
import { berthEndpoint } from './compute/berth-endpoint.js';
import { hostResources } from './compute/resources.js';
import { createImageClient } from '../glance-bridge/client/http.js';
import { Notifier } from './notify/notifier.js';
import { Dispatcher } from './rpc/dispatcher.js';
import { RpcServer } from './rpc/server.js';
import { AmqpTransport } from './rpc/amqp-transport.js';
import { transportPeers } from './compute/peers.js';
import { DriverMetrics } from './metrics.js';
import { computeReadiness } from './http/status.js';
import type { ReadinessCheck } from '../common/status.js';
import { InstanceRow } from './db/models.js';
import { every } from '../common/periodic.js';
import type { Sequelize } from 'sequelize';
import { StandaloneControlPlane, type ControlPlane } from './compute/control-plane.js';
import { createNovaPlane, NovaControlPlane } from './nova/index.js';
import { NovaConsoleAuthorizer } from './nova/console-auth.js';
import { standaloneConsoleAuthorizer } from './compute/serial-console.js';
import { InstancePorts } from './compute/instance-ports.js';
import { InstanceEvents } from './compute/vif-events.js';
import { HttpNeutron } from './neutron/http.js';
import { keystoneSession } from '../common/keystone/index.js';
import type { LocalVolumeSource } from './compute/local-volumes.js';

export interface DriverDeps {
  config: Config;
  agent: AgentClient;
  /** The agent's local volumes API, which moves consult (driver/compute/local-volumes.ts); none: not checked. */
  volumes?: LocalVolumeSource;
  log: Logger;
}

export interface Driver {
  manager: ComputeManager;
  store: InstanceStore;
  server: RpcServer;
  notifier: Notifier;
  transport: AmqpTransport;
  metrics: DriverMetrics;
  /** What /readyz asks: broker, database, agent. */
  readiness: ReadinessCheck[];
  /** Graceful: stop taking work, let in-flight work finish (up to `timeoutMs`), disconnect. */
  stop(timeoutMs?: number): Promise<void>;
}

/** Builds the compute service from its dependencies, recovers interrupted work, then consumes. */
export async function createDriver({ config, agent, volumes, log }: DriverDeps): Promise<Driver> {
  const c = config;
  const rabbit = c.oslo_messaging_rabbit;
  const db = await openDriverDatabase(c.database.connection, { autoSync: c.DEFAULT.db_auto_sync });
  const metrics = new DriverMetrics(() => countInstances(c.DEFAULT.host));
  const store = new CountingStore(db, (code) => metrics.instanceFailed(code));
  const transport = new AmqpTransport({
    url: c.DEFAULT.transport_url,
    rabbit,
    prefetch: c.DEFAULT.max_concurrent_builds + 16,
    log: log.child({ component: 'transport' }),
    connectionName: `berth-compute:${process.pid}:${c.DEFAULT.host}`,
  });
  const publisher = {
    onConnect: transport.onConnect.bind(transport),
    publish: async (...args: Parameters<AmqpTransport['publish']>) => {
      await transport.publish(...args);
      metrics.notificationSent();
    },
  };
  const notifier = new Notifier(publisher, {
    exchange: c.DEFAULT.control_exchange,
    host: c.DEFAULT.host,
    format: c.notifications.notification_format,
    driver: c.notifications.driver,
    versionedTopic: c.notifications.versioned_notifications_topic,
    legacyTopic: c.notifications.legacy_notifications_topic,
    rabbit,
    log,
    beforePublish: store.durable,
  });
  const resources = hostResources(c.compute, c.DEFAULT.state_path);
  // The manager's usage feeds the nova plane's ComputeNode record; the plane is built first.
  let usage: () => ReturnType<ComputeManager['nodeUsage']> = () => Promise.reject(new Error('not started'));
  const plane: ControlPlane =
    c.nova.control_plane === 'nova'
      ? createNovaPlane({ config: c, transport, resources, usage: () => usage(), log: log.child({ component: 'nova' }) })
      : new StandaloneControlPlane();
  const manager = new ComputeManager({
    host: c.DEFAULT.host,
    node: c.DEFAULT.host,
    store,
    agent,
    notifier,
    resources,
    plane,
    // A noauth image service believes X-Roles: the node acts as its admin, as the CLI on the node
    // does, so the image that moves an instance to another node can be the instance's project's.
    images: createImageClient({ url: c.glance.api_url, keystone: c.glance, ...(c.image_store.auth_strategy === 'noauth' ? { roles: ['admin'] } : {}) }),
    peers: transportPeers(transport, c.DEFAULT.control_exchange),
    maintenanceFile: join(c.DEFAULT.state_path, 'maintenance'),
    ...(plane.mode === 'nova' && c.neutron.auth_url
      ? {
          ports: new InstancePorts({
            neutron: new HttpNeutron(keystoneSession(c.neutron), c.neutron.valid_interfaces, c.neutron.endpoint_override),
            plane,
            events: new InstanceEvents(),
            host: c.neutron.binding_host || c.DEFAULT.host,
            vifPluggingTimeout: c.compute.vif_plugging_timeout,
            vifPluggingIsFatal: c.compute.vif_plugging_is_fatal,
            log: log.child({ component: 'neutron' }),
          }),
        }
      : {}),
    shelvedOffloadTime: c.compute.shelved_offload_time,
    ...(volumes ? { volumes } : {}),
    log: log.child({ component: 'manager' }),
  });
  usage = () => manager.nodeUsage();
  metrics.watchCapacity(() => manager.hostCapacity());
  const consoles = {
    enabled: c.serial_console.enabled,
    authorizer:
      plane instanceof NovaControlPlane
        ? new NovaConsoleAuthorizer({ conductor: plane.conductor, baseUrl: c.serial_console.base_url, ttlSeconds: c.serial_console.token_ttl })
        : standaloneConsoleAuthorizer,
  };
  const dispatcher = new Dispatcher([computeEndpoint(manager, agent, consoles), baseApiEndpoint(), berthEndpoint(c.DEFAULT.host, store, manager)]);
  const server = new RpcServer(transport, dispatcher, {
    exchange: c.DEFAULT.control_exchange,
    topic: 'compute',
    server: c.DEFAULT.host,
    rabbit,
    maxMessageBytes: c.DEFAULT.max_message_bytes,
    maxConcurrentLong: c.DEFAULT.max_concurrent_builds,
    log: log.child({ component: 'rpc' }),
    messageLog: store,
    observer: metrics.rpc,
    missingReplyQueueRetryMs: rabbit.kombu_missing_consumer_retry_timeout * 1000,
  });
  await transport.start();
  // Registration needs the queues declared (done on connect) and runs on in the background
  // while the conductor is away, as nova-compute waits for its conductor.
  void plane
    .start()
    .then(() => manager.maintenance.restore())
    .then(() => manager.evacuations.reapEvacuated(true))
    .then((evacuated) => {
      if (evacuated.length) log.warn({ instances: evacuated }, 'removed the leftovers of instances nova evacuated while the node was down');
    })
    .then(() => manager.reapDeletedElsewhere())
    .then((reaped) => {
      if (reaped.length) log.warn({ instances: reaped }, 'reaped instances deleted while the node was away');
    })
    .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'could not compare instances with the control plane'));
  // Notifications of recovered builds need the broker, so recovery runs once connected; the
  // redelivered build messages then find the work done.
  // nova's init_host order: what was evacuated away while the node was down goes first.
  const evacuated = await manager.evacuations.reapEvacuated().catch((err: unknown) => {
    log.warn({ err: (err as Error).message }, 'could not remove the leftovers of evacuated instances; retried at the next start');
    return [];
  });
  if (evacuated.length) log.warn({ instances: evacuated }, 'removed the leftovers of instances evacuated while the node was down');
  const recovered = await manager.recoverInterrupted();
  if (recovered) log.info({ recovered }, 'recovered interrupted operations');
  await manager.syncPowerStates();
  const timers = [
    every(3600, () => store.pruneMessages(24 * 3600 * 1000)),
    every(c.compute.report_interval, () => notifier.capacity(manager)),
    ...(c.compute.sync_power_state_interval > 0 ? [every(c.compute.sync_power_state_interval, () => manager.syncPowerStates())] : []),
    ...(c.compute.shelved_offload_time > 0 && c.compute.shelved_poll_interval > 0
      ? [every(c.compute.shelved_poll_interval, () => manager.shelves.pollShelved())]
      : []),
  ];
  await notifier.capacity(manager);
  return {
    manager,
    store,
    server,
    notifier,
    transport,
    metrics,
    readiness: computeReadiness({ broker: transport, db, agent, ...(plane instanceof NovaControlPlane ? { plane } : {}) }),
    async stop(timeoutMs = 30_000) {
      timers.forEach(clearInterval);
      await plane.stop();
      await server.drain(timeoutMs);
      await transport.close();
      await store.close();
    },
  };
}

/** Counts each fault it records, by its nova exception name. */
class CountingStore extends InstanceStore {
  constructor(
    db: Sequelize,
    private readonly onFault: (code: string) => void,
  ) {
    super(db);
  }

  override async addFault(uuid: string, code: number, message: string, details = ''): Promise<void> {
    await super.addFault(uuid, code, message, details);
    this.onFault(details);
  }
}

async function countInstances(host: string): Promise<Array<[{ vm_state: string }, number]>> {
  const groups = (await InstanceRow.count({ where: { host, deleted: false }, group: ['vm_state'] })) as unknown as Array<{
    vm_state: string;
    count: number | string;
  }>;
  return groups.map((g) => [{ vm_state: g.vm_state }, Number(g.count)]);
}
