import { describeError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { KeyedMutex } from '../../common/keyed-mutex.js';
import type { DockerApi } from '../runtime/docker-api.js';
import type { DockerEventHub } from '../runtime/docker-event-hub.js';
import type { DockerContainer } from '../runtime/docker-inspect.js';
import { ContainerNames } from '../runtime/container-names.js';
import type { DockerNetworks } from './docker-networks.js';
import { agentError } from '../errors.js';
import { LABEL_INSTANCE, LABEL_IPV4, LABEL_MAC, LABEL_NETWORK, LABEL_PROJECT, LABEL_VIFS, ownedBy } from '../runtime/types.js';
import { VethPlumber, type VethCounters } from './veth.js';
import { NeutronPlumber, parkedName } from './neutron-vifs.js';
import { AttachedVifs, type PluggedVif } from './attached-vifs.js';
import type { VifSpec } from '../client/types.js';
import { instanceNotFound } from '../errors.js';

/** Follows the engine's container starts, keeping plugged containers plugged; see DockerPlugs.follow. */
export interface PlugWatch {
  stop(): void;
}

/** What the last plug of a container saw. */
interface Plugged {
  /** The network namespace (sandbox key) that got the pair: a new start makes a new one. */
  netns: string;
  /** When (ms) the plug read the container's state: a start event older than that was seen by it. */
  readAt: number;
  /** The host end's key (ContainerNames.linkKey). */
  key: string;
}

/**
 * The Docker runtime's side of `[docker] network_attach = agent`: plugs containers labelled with
 * their project network into its bridge (VethPlumber) after every start, and follows the
 * engine's start events for the starts the runtime did not make itself.
 */
export class DockerPlugs {
  private readonly veth = new VethPlumber();
  private readonly neutron: NeutronPlumber;
  /** Taps this agent is making before their container starts (preplug): not a crashed create's, whatever the sweep sees. */
  private readonly parking = new Set<string>();
  /** One plug at a time per container: a start and its engine event may ask together. */
  private readonly serial = new KeyedMutex();
  private readonly plugged = new Map<string, Plugged>();

  constructor(
    private readonly api: DockerApi,
    private readonly networks: DockerNetworks,
    /** How a plug reads the container: the engine's inspect unless told. */
    private readonly inspect: (uuid: string) => Promise<DockerContainer | null>,
    private readonly host: string | undefined = undefined,
    /** Where attached interfaces are recorded ([DEFAULT] state_path); without it none can be attached. */
    stateDir: string | undefined = undefined,
  ) {
    this.attachedVifs = new AttachedVifs(stateDir);
    this.neutron = new NeutronPlumber(host, stateDir);
  }
  private readonly attachedVifs: AttachedVifs;

  /**
   * Plugs a running container the agent attaches (labelled with its network) into its project's
   * bridge; a no-op for any other container, or one already plugged. Runs after every start: a
   * new start is a new network namespace, and the pair went with the old one. Resolves with the
   * container as it read it (null if it is gone), so a caller needs no inspect of its own.
   */
  plug(uuid: string): Promise<DockerContainer | null> {
    return this.serial.run(uuid, async () => {
      const readAt = Date.now();
      const c = await this.inspect(uuid);
      const labels = c?.Config?.Labels ?? {};
      const [name, ipv4, macAddress] = [labels[LABEL_NETWORK], labels[LABEL_IPV4], labels[LABEL_MAC]];
      const netns = c?.NetworkSettings?.SandboxKey ?? '';
      const vifs = c ? await this.attachedVifs.current(uuid, labels) : [];
      const key = ContainerNames.linkKey(uuid, c?.Name);
      if (vifs.length && c?.State?.Running === true && netns) {
        // Neutron's ports: each VIF's tap goes with the namespace, so a new start plugs them all again.
        for (const { ifname, vif } of vifs) {
          await this.neutron.attach({ uuid, netns, ifname, vif });
          this.parking.delete(vif.tap);
        }
        this.plugged.set(uuid, { netns, readAt, key });
      }
      if (!name || !ipv4 || !macAddress || c?.State?.Running !== true || !netns) return c;
      if (this.plugged.get(uuid)?.netns === netns && (await this.veth.attached(key))) return c;
      const attach = async (fresh: boolean): Promise<void> => {
        const { bridge, prefix, gateway, projectId } = await this.networks.bridge(name, fresh);
        // The network labels are read from a container whose image is anybody's: a container is
        // only ever plugged into its own project's network (the project label Berth always sets).
        if (!projectId || projectId !== labels[LABEL_PROJECT]) {
          throw agentError('RUNTIME_ERROR', `instance ${uuid} is labelled with network ${name}, which is not its project's`, { uuid });
        }
        await this.veth.attach({ uuid, netns, bridge, ipv4, prefix, gateway, macAddress, ...(key === uuid ? {} : { linkKey: key }) });
      };
      try {
        await attach(false);
      } catch (err) {
        // The network was removed and made again under the same name: a new bridge.
        if (!/cannot find device/i.test(describeError(err))) throw err;
        await attach(true);
      }
      this.plugged.set(uuid, { netns, readAt, key });
      return c;
    });
  }

  /**
   * Attaches a Neutron VIF to an instance (nova's attach_interface): recorded so every later
   * start plugs it, and plugged now when the container runs. Resolves with the guest interface
   * name. Idempotent: a port attached already keeps its interface.
   */
  attachVif(uuid: string, vif: VifSpec): Promise<string> {
    return this.serial.run(uuid, async () => {
      const c = await this.inspect(uuid);
      if (!c) throw instanceNotFound(uuid);
      const labels = c.Config?.Labels ?? {};
      const before = await this.attachedVifs.current(uuid, labels);
      const { list, ifname, added } = this.attachedVifs.withVif(before, vif, labels);
      if (added) await this.attachedVifs.save(uuid, list);
      const netns = c.NetworkSettings?.SandboxKey ?? '';
      if (c.State?.Running === true && netns) {
        try {
          await this.neutron.attach({ uuid, netns, ifname, vif });
        } catch (err) {
          if (added) await this.attachedVifs.save(uuid, before);
          throw err;
        }
      }
      return ifname;
    });
  }

  /** Detaches the VIF of a port (nova's detach_interface): its pair removed, and no later start plugs it. A port not attached is fine. */
  detachVif(uuid: string, portId: string): Promise<void> {
    return this.serial.run(uuid, async () => {
      const c = await this.inspect(uuid);
      const all = await this.attachedVifs.current(uuid, c?.Config?.Labels);
      const gone = all.filter((p) => p.vif.portId === portId);
      if (c && gone.length)
        await this.attachedVifs.save(
          uuid,
          all.filter((p) => p.vif.portId !== portId),
        );
      for (const p of gone) await this.neutron.detach(p.vif.tap);
    });
  }

  /**
   * The taps of a container's Neutron VIFs made on their bridges before it starts (see
   * NeutronPlumber.prepare), so Neutron's agent wires the ports while the container is made; its
   * plug after the start moves the guest ends in. `release` removes them (a create that failed).
   */
  preplug(uuid: string, vifs: VifSpec[]): Promise<void> {
    return this.serial.run(uuid, async () => {
      for (const vif of vifs) {
        this.parking.add(vif.tap);
        await this.neutron.prepare(uuid, vif);
      }
    });
  }

  /** The pairs of VIFs removed, parked or plugged (a create that failed); a tap already gone is fine. */
  async release(vifs: VifSpec[]): Promise<void> {
    for (const vif of vifs) {
      await this.neutron.detach(vif.tap);
      this.parking.delete(vif.tap);
    }
  }

  /**
   * Removes the pairs this host's agent parked (preplug) for a create that never finished (the
   * agent died between making the pair and plugging the container): those whose instance has no
   * container, or one that does not run (its next start makes a new pair). Another agent's on
   * the same kernel (another host's mark) and the ones this agent is making now are left alone;
   * a running container's is moved in by plugStarted. Returns the taps removed.
   */
  async sweepParked(log: Logger): Promise<string[]> {
    const removed: string[] = [];
    for (const end of await this.neutron.parkedEnds()) {
      if (end.owner !== this.neutron.ownerKey || !end.uuid || this.parking.has(end.tap)) continue;
      const uuid = end.uuid;
      await this.serial.run(uuid, async () => {
        if (this.parking.has(end.tap)) return;
        const c = await this.inspect(uuid);
        if (c?.State?.Running === true) return;
        await this.neutron.detach(end.tap);
        removed.push(end.tap);
      });
    }
    if (removed.length) log.info({ taps: removed }, 'removed parked pairs of creates that never finished');
    return removed;
  }

  /**
   * The VIFs of an instance now whose pairs are its container's (read before the container is
   * removed, for unplug): a tap of the same port in another container (the instance evacuated to
   * another node on this engine while this container kept running) is that one's, and stays.
   */
  async vifs(uuid: string): Promise<PluggedVif[]> {
    const c = await this.inspect(uuid).catch(() => null);
    if (!c) return [];
    const all = await this.attachedVifs.current(uuid, c.Config?.Labels);
    const netns = c.NetworkSettings?.SandboxKey ?? '';
    const own = await Promise.all(all.map((p) => (netns ? this.neutron.owns(p.vif.tap, netns) : Promise.resolve(false))));
    return all.filter((_, i) => own[i]);
  }

  /**
   * After the container's removal: each of its VIFs' taps deleted here rather than left for the
   * kernel to reap with the namespace (asynchronously, and never when a process outside holds
   * the namespace), and its record dropped.
   */
  async unplug(uuid: string, vifs: PluggedVif[]): Promise<void> {
    for (const p of vifs) await this.neutron.detach(p.vif.tap);
    await this.attachedVifs.remove(uuid);
  }

  /** The guest's traffic counters, from the host end of its pair; null when it has none. */
  counters(uuid: string): Promise<VethCounters | null> {
    return this.veth.counters(this.plugged.get(uuid)?.key ?? uuid);
  }

  /** Drops what is remembered of a removed container. */
  forget(uuid: string): void {
    this.plugged.delete(uuid);
  }

  /**
   * Keeps every plugged container of this host plugged whatever starts it: the engine restarting
   * it (restart policy, a dockerd restart), or anyone's `docker start`. Follows the engine's
   * start events (a subscriber of the agent's one event stream, `events`), and on each
   * (re)connection plugs whatever started while nobody listened.
   */
  follow(log: Logger, events: Pick<DockerEventHub, 'subscribe'>): PlugWatch {
    const onStart = (uuid: string, startedAtMs?: number): void => {
      // The start this agent made itself (create, start, reboot) was plugged by a read after it.
      const readAt = this.plugged.get(uuid)?.readAt;
      if (startedAtMs !== undefined && readAt !== undefined && readAt > startedAtMs) return;
      this.plug(uuid).catch((err: unknown) => log.warn({ uuid, err: describeError(err) }, 'could not plug a started instance into its project network'));
    };
    const follower = events.subscribe({
      // Every Berth container: a plug reads its labels and does nothing for one on no network.
      actions: ['start', 'create', 'destroy'],
      onConnect: async () => {
        // Creates and removals while nobody listened: the address book is read again.
        this.networks.resetAddressBook();
        await this.plugStarted(onStart);
        await this.sweepParked(log).catch((err: unknown) => log.warn({ err: describeError(err) }, 'could not remove parked pairs left by unfinished creates'));
      },
      onEvent: (ev) => {
        const attrs = ev.Actor?.Attributes;
        const uuid = attrs?.[LABEL_INSTANCE];
        // Every host's containers go in the address book: they share the engine's networks.
        if (ev.Action === 'create') this.networks.noteCreated(attrs);
        else if (ev.Action === 'destroy' && uuid) this.networks.noteRemoved(uuid);
        else if (uuid && ownedBy(attrs, this.host) && (attrs?.[LABEL_NETWORK] || attrs?.[LABEL_VIFS]))
          onStart(uuid, typeof ev.timeNano === 'number' ? Math.ceil(ev.timeNano / 1e6) : undefined);
      },
    });
    return {
      stop: () => {
        follower.stop();
        this.veth.close();
        this.neutron.close();
      },
    };
  }

  /** Plugs this host's running, labelled containers whose pair is missing. */
  private async plugStarted(onStart: (uuid: string) => void): Promise<void> {
    const res = await this.api.json<Array<{ Labels?: Record<string, string> }>>({
      path: '/containers/json',
      query: { filters: JSON.stringify({ label: [LABEL_INSTANCE], status: ['running'] }) },
      what: 'list containers',
    });
    for (const c of res.body ?? []) {
      const uuid = c.Labels?.[LABEL_INSTANCE];
      if (!uuid || !ownedBy(c.Labels, this.host)) continue;
      const vifs = await this.attachedVifs.current(uuid, c.Labels);
      // A tap missing, or its guest end still parked (the agent died before it moved the end in).
      const missing = await Promise.all(
        vifs.map(async (v) => !(await this.neutron.attached(v.vif.tap)) || (await this.neutron.attached(parkedName(v.vif.tap)))),
      );
      if (missing.some(Boolean)) onStart(uuid);
      else if (c.Labels?.[LABEL_NETWORK] && !(await this.veth.attached(uuid))) onStart(uuid);
    }
  }
}
