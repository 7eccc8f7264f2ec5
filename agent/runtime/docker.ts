import type { Duplex } from 'node:stream';
import { BerthError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { FlavorSpec, VifSpec } from '../client/types.js';
import { agentError, instanceNotFound, invalidState } from '../errors.js';
import { DockerApi } from './docker-api.js';
import { createBody, type NetworkAttach, type RestartPolicy } from './docker-create-body.js';
import { DockerImages } from './docker-images.js';
import { inspectContainer, startedInfo, toContainerInfo, type DockerContainer } from './docker-inspect.js';
import { DockerHostNetworking, type EngineEvents, type HostNetworking, type PlugWatch } from '../network/host-networking.js';
import { toContainerStats, type DockerStats } from './docker-stats.js';
import { containerLogs } from './log-frames.js';
import { createPreplugged } from '../network/preplug.js';
import { attachConsole, checkConsole } from './docker-console.js';
import { updateContainerLimits } from './docker-update.js';
import { addressConflict, addressInUse } from './docker-address.js';
import { ContainerNames } from './container-names.js';
import {
  LABEL_INSTANCE,
  LABEL_IPV4,
  LABEL_NETWORK,
  ownedBy,
  STALE_NETWORK,
  type ContainerInfo,
  type ContainerNetwork,
  type ContainerRuntime,
  type ContainerSpec,
  type ContainerStats,
  type ImageInfo,
  type NetworkInfo,
  type NetworkSpec,
} from './types.js';

const LIST_INSPECT_WIDTH = 16;

export interface DockerRuntimeOptions {
  hostUrl: string;
  apiVersion: string;
  /** Longest wait for an image load, whose answer only comes after every layer is unpacked. */
  loadTimeoutMs?: number;
  /** `no` by default: nova decides when an instance comes back, not a restarting engine. */
  restartPolicy?: RestartPolicy;
  /** The compute host whose containers these are ([DEFAULT] host); several may share one dockerd. */
  host?: string;
  /** `agent` by default. */
  networkAttach?: NetworkAttach;
  /** [DEFAULT] state_path: where interfaces attached at run time are recorded (none can be without it). */
  statePath?: string;
}

/** ContainerRuntime on the Docker Engine API. Containers are addressed by the name berth-<uuid> (see ContainerNames). */
export class DockerRuntime implements ContainerRuntime {
  private readonly api: DockerApi;
  /** Project networks on the engine, and the veth pairs of `network_attach = agent`. */
  private readonly net: HostNetworking;
  private readonly images: DockerImages;
  private readonly names: ContainerNames;
  constructor(private readonly opts: DockerRuntimeOptions) {
    this.api = new DockerApi(opts.hostUrl, opts.apiVersion);
    this.names = new ContainerNames(this.api, opts.host);
    this.images = new DockerImages(this.api, this.names, opts.loadTimeoutMs);
    this.net = new DockerHostNetworking(this.api, opts.host, this.names, opts.statePath);
  }

  private get attach(): NetworkAttach {
    return this.opts.networkAttach ?? 'agent';
  }

  async ping(): Promise<boolean> {
    try {
      const res = await this.api.json<unknown>({ path: '/_ping', what: 'answer a ping', timeoutMs: 5000 });
      return res.status === 200;
    } catch {
      return false;
    }
  }

  hasImage(imageId: string): Promise<boolean> {
    return this.images.hasImage(imageId);
  }
  inspectImage(imageId: string): Promise<ImageInfo | null> {
    return this.images.inspectImage(imageId);
  }

  async imagesInUse(): Promise<Set<string>> {
    const res = await this.api.json<Array<{ ImageID?: string }>>({ path: '/containers/json', query: { all: 1 }, what: 'list containers' });
    return new Set((res.body ?? []).map((c) => c.ImageID).filter((id): id is string => typeof id === 'string'));
  }

  async stats(uuid: string): Promise<ContainerStats> {
    if (!(await this.inspect(uuid))) throw instanceNotFound(uuid);
    const res = await this.api.json<DockerStats>({
      path: `/containers/${await this.names.of(uuid)}/stats`,
      query: { stream: 'false' },
      accept: [404],
      timeoutMs: 30_000,
      what: "read the container's stats",
    });
    if (res.status === 404 || !res.body) throw instanceNotFound(uuid);
    const stats = toContainerStats(res.body);
    // The engine knows nothing of a pair the agent plugged in; its host end counts the traffic.
    const plugged = await this.net.counters(uuid);
    return plugged ? { ...stats, network: plugged } : stats;
  }

  /**
   * Loads an image archive with every name in it removed first (untaggedArchive): whatever store
   * it came from, a load adds an image under its id and never moves a tag on this host.
   */
  loadImage(archive: NodeJS.ReadableStream): Promise<string[]> {
    return this.images.loadImage(archive);
  }
  pullImage(reference: string): Promise<string> {
    return this.images.pullImage(reference);
  }

  async createContainer(spec: ContainerSpec): Promise<{ info: ContainerInfo; created: boolean }> {
    // On Neutron's ports the taps are made while the container is (see createPreplugged).
    return spec.vifs?.length ? createPreplugged(this.net, spec.uuid, spec.vifs, () => this.createAndStart(spec)) : this.createAndStart(spec);
  }
  private async createAndStart(spec: ContainerSpec): Promise<{ info: ContainerInfo; created: boolean }> {
    if (spec.network && this.attach === 'agent') await this.checkAddressFree(spec.uuid, spec.network);
    const inherited = await this.images.berthLabelsOfImage(spec.imageId);
    if (inherited === null)
      throw agentError('IMAGE_NOT_FOUND', `image ${spec.glanceImageId} is not present in the container runtime`, { image_id: spec.glanceImageId });
    const res = await this.api.json<{ Id: string }>({
      method: 'POST',
      path: '/containers/create',
      query: { name: await this.names.of(spec.uuid) },
      body: createBody(spec, this.opts.restartPolicy ?? 'no', this.opts.host, this.attach, inherited),
      accept: [404, 409],
      what: 'create the container',
    });
    if (res.status === 404 && spec.network && /network/i.test(res.message)) {
      throw agentError('RUNTIME_ERROR', `the network of instance ${spec.uuid} vanished while it was being created`, { uuid: spec.uuid, reason: STALE_NETWORK });
    }
    if (res.status === 404)
      throw agentError('IMAGE_NOT_FOUND', `image ${spec.glanceImageId} is not present in the container runtime`, { image_id: spec.glanceImageId });
    if (res.status === 409) return { info: await this.startIfNeverStarted(spec.uuid), created: false };
    if (spec.network && this.attach === 'agent') {
      this.net.noteCreated({ [LABEL_INSTANCE]: spec.uuid, [LABEL_NETWORK]: spec.network.name, [LABEL_IPV4]: spec.network.ipv4 });
    }
    const createdAt = new Date().toISOString();
    let started: DockerContainer | null;
    try {
      // An engine-attached container needs no plugging, so no read of it either.
      if (spec.network && this.attach === 'engine') {
        await this.action(spec.uuid, 'start');
        started = null;
      } else {
        started = await this.startAndPlug(spec.uuid);
      }
    } catch (err) {
      await this.remove(spec.uuid, 0).catch(() => undefined);
      throw addressConflict(err, spec);
    }
    // On a project network the address is the one asked for, so what the engine would report is
    // known already; on the default bridge only the engine knows the address (read after start).
    if (!spec.network) return { info: started ? toContainerInfo(started) : vanished(spec.uuid), created: true };
    return { info: startedInfo(spec, createdAt), created: true };
  }

  /**
   * What the engine would refuse at start for a container it attaches itself: another plugged
   * container (any state) labelled with the address, or a network that is gone. Both are
   * STALE_NETWORK. (Containers the engine attached are in the addresses ProjectNetworks reads.)
   * The network is inspected afresh each time, one engine call whatever the number of
   * instances: a network removed behind the agent's back (`docker network rm`, a prune) is
   * noticed here and recreated by the retry, not found broken at plug time.
   */
  private async checkAddressFree(uuid: string, net: ContainerNetwork): Promise<void> {
    const [holders] = await Promise.all([this.net.pluggedHolders(net.name, net.ipv4), this.net.bridge(net.name, true)]);
    if (holders.some((h) => h !== uuid)) throw addressInUse(uuid, net.ipv4);
  }

  /** The container already exists (a repeated create): start it only when it never ran. */
  private async startIfNeverStarted(uuid: string): Promise<ContainerInfo> {
    const existing = (await this.inspect(uuid)) ?? vanished(uuid);
    if (existing.state !== 'created') return existing;
    const started = await this.startAndPlug(uuid);
    return started ? toContainerInfo(started) : existing;
  }

  async inspect(uuid: string): Promise<ContainerInfo | null> {
    const c = await inspectContainer(this.api, this.names, uuid);
    return c ? toContainerInfo(c) : null;
  }

  /** Keeps every container this runtime plugged in plugged whatever starts it (see DockerPlugs.follow); the owner stops the watch. */
  keepPlugged(log: Logger, events: EngineEvents): PlugWatch {
    return this.net.follow(log, events);
  }

  async list(): Promise<ContainerInfo[]> {
    const res = await this.api.json<Array<{ Labels?: Record<string, string> }>>({
      path: '/containers/json',
      query: { all: 1, filters: JSON.stringify({ label: [LABEL_INSTANCE] }) },
      what: 'list containers',
    });
    // Docker's label filter cannot say "this host or no host label", so that part is done here.
    const uuids = (res.body ?? [])
      .filter((c) => ownedBy(c.Labels, this.opts.host))
      .map((c) => c.Labels?.[LABEL_INSTANCE])
      .filter((u): u is string => typeof u === 'string');
    // A container removed between the two calls inspects as null; an unreachable engine must
    // fail the whole list, or the caller would take live instances for deleted ones.
    // A bounded number in flight: hundreds of parallel inspects only queue up in dockerd and
    // hold every answer in this process's memory at once.
    const infos: (ContainerInfo | null)[] = [];
    for (let i = 0; i < uuids.length; i += LIST_INSPECT_WIDTH) {
      infos.push(
        ...(await Promise.all(
          uuids.slice(i, i + LIST_INSPECT_WIDTH).map((u) =>
            this.inspect(u).catch((err: unknown) => {
              if (err instanceof BerthError && err.code === 'RUNTIME_UNAVAILABLE') throw err;
              return null;
            }),
          ),
        )),
      );
    }
    return infos.filter((i): i is ContainerInfo => i !== null);
  }

  async stop(uuid: string, timeoutSec: number): Promise<void> {
    await this.action(uuid, 'stop', { t: timeoutSec }, (timeoutSec + 30) * 1000);
  }
  async start(uuid: string): Promise<void> {
    await this.startAndPlug(uuid);
  }
  /** Starts the container and plugs it if the agent attaches it; resolves with the container as read then. */
  private async startAndPlug(uuid: string): Promise<DockerContainer | null> {
    await this.action(uuid, 'start');
    return this.net.plug(uuid);
  }
  async restart(uuid: string, timeoutSec: number): Promise<void> {
    await this.action(uuid, 'restart', { t: timeoutSec }, (timeoutSec + 30) * 1000);
    await this.net.plug(uuid);
  }
  async kill(uuid: string, signal = 'SIGKILL'): Promise<void> {
    await this.action(uuid, 'kill', { signal });
  }
  async pause(uuid: string): Promise<void> {
    await this.action(uuid, 'pause');
  }
  async unpause(uuid: string): Promise<void> {
    // Docker answers a 500, not a 409, when the container is not paused.
    const info = await this.inspect(uuid);
    if (!info) throw instanceNotFound(uuid);
    if (info.state !== 'paused') throw invalidState(uuid, 'unpause', info.state);
    await this.action(uuid, 'unpause');
  }

  async remove(uuid: string, timeoutSec: number): Promise<ContainerInfo | null> {
    const info = await this.inspect(uuid);
    if (!info) return null;
    // A container that does not run has no namespace: its taps went with it, and a tap of the same
    // name now is another's (the instance's Neutron port plugged into its container of another
    // node on this engine, after a move), which must stay.
    const vifs = info.state === 'running' || info.state === 'paused' || info.state === 'restarting' ? await this.net.vifs(uuid) : [];
    // A graceful stop first, so the guest sees SIGTERM; force-remove kills whatever is left.
    if (info.state === 'running' && timeoutSec > 0) await this.stop(uuid, timeoutSec).catch(() => undefined);
    const res = await this.api.json<unknown>({
      method: 'DELETE',
      path: `/containers/${await this.names.of(uuid)}`,
      query: { force: 1, v: 1 },
      accept: [404, 409],
      what: 'remove the container',
    });
    if (res.status === 409) await this.waitGone(uuid);
    await this.net.unplug(uuid, vifs);
    this.net.forget(uuid);
    this.names.forget(uuid);
    return info;
  }

  attachVif(uuid: string, vif: VifSpec): Promise<string> {
    return this.net.attachVif(uuid, vif);
  }
  detachVif(uuid: string, portId: string): Promise<void> {
    return this.net.detachVif(uuid, portId);
  }

  async logs(uuid: string, opts: { tail: number; maxBytes: number }): Promise<string> {
    if (!(await this.inspect(uuid))) throw instanceNotFound(uuid);
    return opts.tail <= 0 ? '' : containerLogs(this.api, uuid, await this.names.of(uuid), opts);
  }

  checkConsole(uuid: string): Promise<void> {
    return checkConsole(this.api, this.names, uuid);
  }
  attachConsole(uuid: string): Promise<Duplex> {
    return attachConsole(this.api, this.names, uuid);
  }
  async updateLimits(uuid: string, flavor: FlavorSpec): Promise<void> {
    return updateContainerLimits(this.api, await this.names.of(uuid), uuid, flavor);
  }
  commit(uuid: string): Promise<string> {
    return this.images.commit(uuid);
  }
  exportImage(imageId: string): Promise<NodeJS.ReadableStream> {
    return this.images.exportImage(imageId);
  }
  removeImage(imageId: string): Promise<void> {
    return this.images.removeImage(imageId);
  }

  listNetworks(): Promise<NetworkInfo[]> {
    return this.net.list();
  }
  createNetwork(spec: NetworkSpec): Promise<boolean> {
    return this.net.create(spec);
  }
  removeNetwork(name: string): Promise<boolean> {
    return this.net.remove(name);
  }
  networkAddresses(name: string): Promise<string[]> {
    return this.net.addresses(name);
  }

  private async action(uuid: string, verb: string, query: Record<string, string | number> = {}, timeoutMs?: number): Promise<void> {
    const res = await this.api.json<unknown>({
      method: 'POST',
      path: `/containers/${await this.names.of(uuid)}/${verb}`,
      query,
      accept: [404, 409],
      timeoutMs,
      what: `${verb} the container`,
    });
    if (res.status === 404) throw instanceNotFound(uuid);
    if (res.status === 409) {
      const now = await this.inspect(uuid).catch(() => null);
      throw invalidState(uuid, verb, now?.state ?? 'in another state');
    }
  }

  /** Another removal is under way (Docker answers 409); wait for it rather than fail a delete. */
  private async waitGone(uuid: string): Promise<void> {
    for (let i = 0; i < 50; i++) {
      if (!(await this.inspect(uuid))) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw agentError('RUNTIME_ERROR', `container for instance ${uuid} is still being removed`, { uuid });
  }
}

function vanished(uuid: string): never {
  throw agentError('RUNTIME_ERROR', `container for instance ${uuid} vanished while it was being created`, { uuid });
}
