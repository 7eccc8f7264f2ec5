import type { AgentClient, InstanceSpec } from '../../agent/client/types.js';
import { describeError } from '../../common/errors.js';
import type { KeyedMutex } from '../../common/keyed-mutex.js';
import type { Logger } from '../../common/log.js';
import type { InstanceRow } from '../db/models.js';
import type { Instance } from '../objects/instance.js';
import type { RequestContext } from '../rpc/envelope.js';
import { novaError } from '../rpc/failure.js';
import { storedNeutron, type BuildNetworks, type InstancePorts, type StoredNeutron } from './instance-ports.js';
import type { InstanceStore } from './store.js';
import type { InstanceEvent } from './vif-events.js';
import type { BuildStages } from './build-stages.js';

/** The record's spec: what the agent gets, and (nova mode with Neutron) the instance's networking. */
type StoredSpec = InstanceSpec & { neutron?: StoredNeutron };

/** The wait for Neutron's network-vif-plugged events of a spawn. */
export interface Plugged {
  wait(): Promise<void>;
  /** Stops waiting; resolves once what the build was writing meanwhile is written. */
  cancel(): Promise<void>;
}

export interface SpawnNetworksDeps {
  store: InstanceStore;
  /** Neutron's ports of instances (nova mode with [neutron]); without it instances are on project networks. */
  ports?: InstancePorts;
  /** The manager's per-instance lock: a refresh never overlaps an operation on the instance. */
  locks: KeyedMutex;
  /** The agent, to fetch a build's image while its ports are made; none: the create fetches it. */
  agent?: Pick<AgentClient, 'hostImage' | 'fetchImage'>;
  /** The timelines of builds in progress (ports_bound, vif_plugged); none: not timed. */
  stages?: BuildStages;
  log: Logger;
}

/**
 * The networking steps of an instance's lifecycle with Neutron (nova-compute's
 * `_build_networks_for_instance`, `_cleanup_allocated_networks`, `_process_instance_event`); each
 * is a no-op for an instance on a project network.
 */
export class SpawnNetworks {
  constructor(private readonly d: SpawnNetworksDeps) {}

  /** What a new build's record keeps of its requested networks, or null without Neutron. */
  recordOf(networks: BuildNetworks | undefined, az: string | null): StoredNeutron | null {
    return this.d.ports ? storedNeutron(networks, az) : null;
  }

  /**
   * What the record of an instance built on another node keeps of its networks when it arrives
   * here without its record (unshelve, evacuation): its Neutron ports, from nova's info cache,
   * which the spawn binds to this host (nova's setup_instance_network_on_host); the ports its
   * caller made are kept as requested by port, so that a delete unbinds rather than deletes them.
   * Null without Neutron or without ports (the instance goes on this node's project network).
   */
  adoptedRecordOf(instance: Pick<Instance, 'cached_ports' | 'availability_zone'>): StoredNeutron | null {
    if (!this.d.ports || !instance.cached_ports.length) return null;
    const requests = instance.cached_ports.filter((p) => p.preserve_on_delete).map((p) => ({ network_id: null, port_id: p.id, address: null }));
    return { requests, security_groups: [], availability_zone: instance.availability_zone };
  }

  /**
   * The spec the agent gets for a recorded build: with Neutron, its ports allocated and bound
   * (the image fetched meanwhile), and the wait for their plug registered before the plug. The
   * info cache and the record's network_info are written while the agent makes the container:
   * `plugged.wait()` waits for them too, and `plugged.cancel()` resolves once they are done.
   */
  async prepare(ctx: RequestContext, row: InstanceRow): Promise<{ spec: InstanceSpec; plugged: Plugged | null }> {
    const { neutron, ...spec } = JSON.parse(row.spec) as StoredSpec;
    if (!neutron || !this.d.ports) return { spec, plugged: null };
    if (neutron.auto)
      throw novaError('UnableToAutoAllocateNetwork', 400, 'Unable to automatically allocate a network: this node takes --network NET or --port PORT', {});
    const inst = { uuid: row.uuid, project_id: row.project_id, availability_zone: neutron.availability_zone, security_groups: neutron.security_groups };
    // As nova's _allocate_network_async: the ports are made while the image comes.
    const fetching = this.prefetch(row.uuid, spec.image_id);
    // Listened for before the ports are made or bound here (nova's wait_for_instance_event wraps
    // the binding update and the plug): Neutron may report a port up as soon as its binding
    // changes or its tap appears, and an event nobody waits for is dropped.
    const listening = this.d.ports.listenPlugged(row.uuid);
    let built: Awaited<ReturnType<InstancePorts['allocate']>>;
    try {
      built = await this.d.ports.allocate(inst, neutron.requests);
    } catch (err) {
      listening.cancel();
      throw err;
    }
    this.d.stages?.mark(row.uuid, 'ports_bound');
    const withVifs = { ...spec, vifs: built.vifs };
    const expected = listening.expect(built.networkInfo);
    const saved = Promise.all([
      this.d.ports.saveInfoCache(ctx, row.uuid, built.networkInfo),
      this.d.store.setImage(row, row.image_ref, { ...withVifs, neutron: { ...neutron, network_info: built.networkInfo } }),
    ]).then(() => undefined);
    // Waited for by wait() or cancel(); a failure is reported there.
    saved.catch(() => undefined);
    await fetching;
    return {
      spec: withVifs,
      plugged: {
        wait: async () => {
          await saved;
          await expected.wait();
        },
        cancel: async () => {
          expected.cancel();
          await saved.catch((err: unknown) =>
            this.d.log.warn({ instance: row.uuid, err: describeError(err) }, 'could not save the network info of a failed build'),
          );
        },
      },
    };
  }

  /**
   * The image put on the host beside the ports' allocation. Never fails: an image that cannot
   * come is the agent's create's to report (IMAGE_NOT_FOUND ...), after the ports are released.
   * A build whose ports fail does not wait for it (the agent's download fills its cache).
   */
  private prefetch(uuid: string, imageId: string): Promise<void> {
    const agent = this.d.agent;
    if (!agent) return Promise.resolve();
    return (async () => {
      if (!(await agent.hostImage(imageId)).present) await agent.fetchImage(imageId);
      this.d.stages?.mark(uuid, 'image_ready');
    })().catch((err: unknown) =>
      this.d.log.info({ instance: uuid, image: imageId, err: describeError(err) }, 'image not fetched beside the ports; the create fetches it'),
    );
  }

  /** Releases the Neutron ports of an instance that has them on record. */
  async release(row: InstanceRow): Promise<void> {
    const { neutron } = JSON.parse(row.spec) as StoredSpec;
    if (neutron && this.d.ports) await this.d.ports.release(row.uuid, neutron);
  }

  /**
   * external_instance_event (nova's `_process_instance_event`): each event goes to the build
   * waiting for it (network-vif-plugged, -unplugged); network-changed and network-vif-deleted
   * refresh the instance's network_info from Neutron and save it as the info cache again.
   */
  events(ctx: RequestContext, events: Array<InstanceEvent & { instance_uuid: string }>): void {
    const refresh = new Set<string>();
    // Every waiting build gets its events first: a refresh waits for the build's lock.
    for (const ev of events) {
      const taken = this.d.ports?.deliver(ev.instance_uuid, ev) ?? false;
      if (taken && ev.name === 'network-vif-plugged') this.d.stages?.mark(ev.instance_uuid, 'vif_plugged');
      this.d.log.info({ instance: ev.instance_uuid, event: ev.name, tag: ev.tag, status: ev.status, awaited: taken }, 'external instance event');
      if (ev.name === 'network-changed' || ev.name === 'network-vif-deleted') refresh.add(ev.instance_uuid);
    }
    for (const uuid of refresh) {
      void this.d.locks
        .run(uuid, async () => {
          const row = await this.d.store.get(uuid);
          const { neutron, ...spec } = row && !row.deleted ? (JSON.parse(row.spec) as StoredSpec) : {};
          if (!row || !neutron?.network_info || !this.d.ports) return;
          const networkInfo = await this.d.ports.refresh(ctx, row.uuid, neutron);
          await this.d.store.setImage(row, row.image_ref, { ...spec, neutron: { ...neutron, network_info: networkInfo } });
        })
        .catch((err: unknown) => this.d.log.warn({ instance: uuid, err: describeError(err) }, 'could not refresh the network info cache'));
    }
  }
}
