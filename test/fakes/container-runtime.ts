import { PassThrough, Readable, type Duplex } from 'node:stream';
import { agentError, instanceNotFound, invalidState } from '../../agent/errors.js';
import { overlaps, parseCidr } from '../../agent/network/ipv4.js';
import {
  LABEL_HOST,
  ownedBy,
  STALE_NETWORK,
  type ContainerInfo,
  type ContainerRuntime,
  type ContainerSpec,
  type ContainerState,
  type ContainerStats,
  type ImageInfo,
  type NetworkInfo,
  type NetworkSpec,
} from '../../agent/runtime/types.js';
import type { FlavorSpec, VifSpec } from '../../agent/client/types.js';
import { flavorLimits } from '../../agent/runtime/limits.js';
import { buildDockerArchive, imageIdsInArchive } from './docker-archive.js';

const FAKE_IMAGE_SIZE = 4096;

interface FakeContainer {
  info: ContainerInfo;
  spec: ContainerSpec;
  console: string;
  host?: string;
  /** The VIFs attached now with their guest interfaces (set once one is attached or detached). */
  vifs?: Array<{ ifname: string; vif: VifSpec }>;
}

/**
 * In-memory ContainerRuntime that follows Docker's answers state by state (the conformance suite
 * holds it to that). Knobs let tests make the engine unreachable or make the next start fail.
 */
export class FakeContainerRuntime implements ContainerRuntime {
  readonly images = new Set<string>();
  readonly containers = new Map<string, FakeContainer>();
  /** Containers the agent did not label: never listed, but they exist in the engine. */
  readonly foreign: string[] = [];
  /** Networks by name; like Docker's, the default bridge is always there. */
  readonly networks = new Map<string, NetworkInfo>([['bridge', { name: 'bridge', projectId: null, subnets: ['172.17.0.0/16'] }]]);
  unavailable = false;
  failNextStart = false;
  loads = 0;
  pulls = 0;
  /** What pullImage can fetch: image ids by reference, as a registry would serve them. */
  readonly registry = new Map<string, string>();
  /** docker-archives of committed images, by image id. */
  readonly commits = new Map<string, Buffer>();
  private nextIp = 2;

  /** `host`: the compute host whose containers this runtime lists, as DockerRuntime's option. */
  constructor(private readonly opts: { host?: string } = {}) {}

  async ping(): Promise<boolean> {
    return !this.unavailable;
  }

  async hasImage(imageId: string): Promise<boolean> {
    this.reachable();
    return this.images.has(imageId);
  }

  async inspectImage(imageId: string): Promise<ImageInfo | null> {
    this.reachable();
    return this.images.has(imageId) ? { imageId, sizeBytes: FAKE_IMAGE_SIZE } : null;
  }

  async imagesInUse(): Promise<Set<string>> {
    this.reachable();
    return new Set([...this.containers.values()].map((c) => c.spec.imageId));
  }

  /** Figures that grow with the container's uptime, so successive samples differ like real ones. */
  async stats(uuid: string): Promise<ContainerStats> {
    const c = this.get(uuid);
    const running = c.info.state === 'running' || c.info.state === 'paused';
    const up = running && c.info.startedAt ? Math.max(1, Date.now() - Date.parse(c.info.startedAt)) : 0;
    return {
      cpu: { total_usage_ns: up * 1000, percent: running ? 0.1 : null, online_cpus: running ? 1 : null },
      memory: { usage_bytes: running ? 1 << 20 : 0, limit_bytes: c.spec.flavor.memory_mb * 1024 * 1024 },
      network: { rx_bytes: running ? 1000 : 0, tx_bytes: running ? 500 : 0, rx_packets: running ? 10 : 0, tx_packets: running ? 5 : 0 },
      pids: running ? 1 : 0,
    };
  }

  async loadImage(archive: NodeJS.ReadableStream): Promise<string[]> {
    this.reachable();
    this.loads++;
    let ids: string[];
    try {
      ids = await imageIdsInArchive(archive);
    } catch (err) {
      throw agentError('IMAGE_FETCH_FAILED', `container runtime could not load the image archive: ${(err as Error).message}`);
    }
    for (const id of ids) this.images.add(id);
    return ids;
  }

  async pullImage(reference: string): Promise<string> {
    this.reachable();
    const imageId = this.registry.get(reference);
    if (!imageId) throw agentError('IMAGE_FETCH_FAILED', `container runtime could not pull ${reference}: manifest unknown`, { reference });
    this.pulls++;
    this.images.add(imageId);
    return imageId;
  }

  async createContainer(spec: ContainerSpec): Promise<{ info: ContainerInfo; created: boolean }> {
    this.reachable();
    const existing = this.containers.get(spec.uuid);
    if (existing) {
      if (existing.info.state === 'created') await this.start(spec.uuid);
      return { info: { ...existing.info }, created: false };
    }
    if (!this.images.has(spec.imageId)) throw agentError('IMAGE_NOT_FOUND', `image ${spec.glanceImageId} is not present in the container runtime`);
    if (spec.network && !this.networks.has(spec.network.name)) {
      throw agentError('RUNTIME_ERROR', `the network of instance ${spec.uuid} vanished while it was being created`, { uuid: spec.uuid, reason: STALE_NETWORK });
    }
    if (spec.network && this.addressActive(spec.network.name, spec.network.ipv4)) {
      throw agentError('RUNTIME_ERROR', `address ${spec.network.ipv4} of instance ${spec.uuid} is already in use on its network`, {
        uuid: spec.uuid,
        reason: STALE_NETWORK,
      });
    }
    const info: ContainerInfo = {
      uuid: spec.uuid,
      state: 'created',
      oomKilled: false,
      exitCode: null,
      projectId: spec.projectId,
      glanceImageId: spec.glanceImageId,
      ipAddress: null,
      createdAt: new Date().toISOString(),
      startedAt: null,
    };
    this.containers.set(spec.uuid, { info, spec, console: '', host: this.opts.host });
    try {
      await this.start(spec.uuid);
    } catch (err) {
      this.containers.delete(spec.uuid);
      throw err;
    }
    return { info: { ...info }, created: true };
  }

  async inspect(uuid: string): Promise<ContainerInfo | null> {
    this.reachable();
    const c = this.containers.get(uuid);
    return c ? { ...c.info } : null;
  }

  async list(): Promise<ContainerInfo[]> {
    this.reachable();
    return [...this.containers.values()]
      .filter((c) => ownedBy(c.host === undefined ? {} : { [LABEL_HOST]: c.host }, this.opts.host))
      .map((c) => ({ ...c.info }));
  }

  /** Adds a never-started Berth container labelled for `host` (undefined: made before host labels existed). */
  addBerthContainer(spec: ContainerSpec, host: string | undefined): void {
    this.containers.set(spec.uuid, {
      info: {
        uuid: spec.uuid,
        state: 'created',
        oomKilled: false,
        exitCode: null,
        projectId: spec.projectId,
        glanceImageId: spec.glanceImageId,
        ipAddress: null,
        createdAt: new Date().toISOString(),
        startedAt: null,
      },
      spec,
      console: '',
      host,
    });
  }

  async stop(uuid: string): Promise<void> {
    const c = this.get(uuid);
    if (c.info.state === 'running' || c.info.state === 'paused') this.exit(c, 0);
  }

  async start(uuid: string): Promise<void> {
    const c = this.get(uuid);
    if (c.info.state === 'paused') throw invalidState(uuid, 'start', 'paused');
    if (c.info.state === 'running') return;
    if (this.failNextStart) {
      this.failNextStart = false;
      throw agentError('RUNTIME_ERROR', 'container runtime failed to start the container (HTTP 500)');
    }
    c.info.state = 'running';
    c.info.exitCode = null;
    c.info.startedAt = new Date().toISOString();
    c.info.ipAddress = c.spec.network?.ipv4 ?? `172.17.0.${this.nextIp++}`;
    c.console += `berth-guest: booted ${c.spec.hostname}\n`;
  }

  async restart(uuid: string): Promise<void> {
    const c = this.get(uuid);
    if (c.info.state === 'running' || c.info.state === 'paused') this.exit(c, 0);
    await this.start(uuid);
  }

  /**
   * The fake guest is the test image's: as PID 1 it ends on SIGKILL and on SIGTERM/SIGINT (which
   * it handles); any other signal has no handler and the kernel drops it.
   */
  async kill(uuid: string, signal = 'SIGKILL'): Promise<void> {
    const c = this.get(uuid);
    if (c.info.state !== 'running') throw invalidState(uuid, 'kill', c.info.state);
    if (signal === 'SIGKILL') this.exit(c, 137);
    else if (signal === 'SIGTERM' || signal === 'SIGINT') this.exit(c, 143);
  }

  async pause(uuid: string): Promise<void> {
    this.move(uuid, 'pause', 'running', 'paused');
  }
  async unpause(uuid: string): Promise<void> {
    this.move(uuid, 'unpause', 'paused', 'running');
  }

  /** The VIFs of a container with their guest interfaces, as the real runtime plugs them. */
  vifsOf(uuid: string): Array<{ ifname: string; vif: VifSpec }> {
    const c = this.get(uuid);
    return c.vifs ?? (c.spec.vifs ?? []).map((vif, i) => ({ ifname: `eth${i}`, vif }));
  }

  async attachVif(uuid: string, vif: VifSpec): Promise<string> {
    const c = this.get(uuid);
    const list = this.vifsOf(uuid);
    const had = list.find((p) => p.vif.portId === vif.portId);
    if (had) return had.ifname;
    const taken = new Set(list.map((p) => p.ifname));
    if (c.spec.network) taken.add('eth0');
    let n = 0;
    while (taken.has(`eth${n}`)) n++;
    c.vifs = [...list, { ifname: `eth${n}`, vif }];
    return `eth${n}`;
  }

  async detachVif(uuid: string, portId: string): Promise<void> {
    this.reachable();
    if (!this.containers.has(uuid)) return;
    this.get(uuid).vifs = this.vifsOf(uuid).filter((p) => p.vif.portId !== portId);
  }

  async remove(uuid: string): Promise<ContainerInfo | null> {
    this.reachable();
    const c = this.containers.get(uuid);
    this.containers.delete(uuid);
    return c ? { ...c.info } : null;
  }

  async logs(uuid: string, opts: { tail: number; maxBytes: number }): Promise<string> {
    const c = this.get(uuid);
    if (opts.tail <= 0) return '';
    const lines = c.console
      .split(/(?<=\n)/)
      .slice(-opts.tail)
      .join('');
    const bytes = Buffer.from(lines);
    return bytes.subarray(Math.max(0, bytes.length - opts.maxBytes)).toString('utf8');
  }

  /** Docker's update: the new limits in any state; no switch between a NanoCpus and a quota/period CPU bound. */
  async updateLimits(uuid: string, flavor: FlavorSpec): Promise<void> {
    const c = this.get(uuid);
    const bound = (f: FlavorSpec) => ('CpuQuota' in flavorLimits(f) ? 'quota' : 'nano');
    if (bound(flavor) !== bound(c.spec.flavor)) {
      throw agentError('INVALID_INPUT', `instance ${uuid} cannot move between a vCPU bound and a quota:cpu_quota/cpu_period bound in place`, {
        uuid,
        field: 'flavor',
      });
    }
    c.spec = { ...c.spec, flavor };
  }

  async commit(uuid: string): Promise<string> {
    this.get(uuid);
    const archive = await buildDockerArchive(`berth/commit:${uuid}`, `${uuid}-${this.commits.size}`);
    this.images.add(archive.imageId);
    this.commits.set(archive.imageId, archive.tar);
    return archive.imageId;
  }

  async exportImage(imageId: string): Promise<NodeJS.ReadableStream> {
    this.reachable();
    const archive = this.commits.get(imageId);
    if (!archive || !this.images.has(imageId)) throw agentError('IMAGE_NOT_FOUND', 'image to export is not present in the container runtime');
    return Readable.from([archive]);
  }

  async removeImage(imageId: string): Promise<void> {
    this.reachable();
    if ([...this.containers.values()].some((c) => c.spec.imageId === imageId)) return;
    this.images.delete(imageId);
    this.commits.delete(imageId);
  }

  async listNetworks(): Promise<NetworkInfo[]> {
    this.reachable();
    return [...this.networks.values()].map((n) => ({ ...n, subnets: [...n.subnets] }));
  }

  async createNetwork(spec: NetworkSpec): Promise<boolean> {
    this.reachable();
    const wanted = parseCidr(spec.subnet);
    if (!wanted) throw agentError('RUNTIME_ERROR', 'container runtime failed to create a project network (HTTP 400)');
    const clash = [...this.networks.values()].some((n) => n.name === spec.name || n.subnets.some((s) => overlaps(parseCidr(s)!, wanted)));
    if (clash) return false;
    this.networks.set(spec.name, { name: spec.name, projectId: spec.projectId, subnets: [spec.subnet] });
    return true;
  }

  async removeNetwork(name: string): Promise<boolean> {
    this.reachable();
    if ([...this.containers.values()].some((c) => c.spec.network?.name === name)) return false;
    this.networks.delete(name);
    return true;
  }

  async networkAddresses(name: string): Promise<string[]> {
    this.reachable();
    return [...this.containers.values()].flatMap((c) => (c.spec.network?.name === name ? [c.spec.network.ipv4] : []));
  }

  /** Docker refuses a static address a running or paused container holds (stopped ones hold theirs only on paper). */
  private addressActive(network: string, ipv4: string): boolean {
    return [...this.containers.values()].some(
      (c) => c.spec.network?.name === network && c.spec.network.ipv4 === ipv4 && (c.info.state === 'running' || c.info.state === 'paused'),
    );
  }

  /** Containers created without an open stdin (by a Berth without consoles). */
  private readonly withoutStdin = new Set<string>();

  async checkConsole(uuid: string): Promise<void> {
    const c = this.get(uuid);
    if (c.info.state !== 'running') throw invalidState(uuid, 'open the console of', c.info.state);
    if (this.withoutStdin.has(uuid)) {
      throw agentError('CONSOLE_UNAVAILABLE', `instance ${uuid} was created without a console (no open stdin); rebuild it to get one`, {
        uuid,
        reason: 'NO_OPEN_STDIN',
      });
    }
  }

  /** The fake guest reads its console as `cat` does: every line written comes back, and goes to its log. */
  async attachConsole(uuid: string): Promise<Duplex> {
    await this.checkConsole(uuid);
    const c = this.get(uuid);
    const echo = new PassThrough();
    echo.on('data', (chunk: Buffer) => {
      c.console += chunk.toString('utf8');
    });
    return echo;
  }

  /** Makes the container one created without an open stdin. */
  closeStdin(uuid: string): void {
    this.get(uuid);
    this.withoutStdin.add(uuid);
  }

  /** Appends to an instance's console, as its guest would. */
  writeConsole(uuid: string, text: string): void {
    this.get(uuid).console += text;
  }

  /** Marks a container as killed by the kernel's OOM killer. */
  oomKill(uuid: string): void {
    const c = this.get(uuid);
    this.exit(c, 137);
    c.info.oomKilled = true;
  }

  private exit(c: FakeContainer, code: number): void {
    c.info.state = 'exited';
    c.info.exitCode = code;
    c.info.ipAddress = c.spec.network?.ipv4 ?? null;
    c.console += 'berth-guest: shutting down\n';
  }

  private move(uuid: string, op: string, from: ContainerState, to: ContainerState): void {
    const c = this.get(uuid);
    if (c.info.state !== from) throw invalidState(uuid, op, c.info.state);
    c.info.state = to;
  }

  private get(uuid: string): FakeContainer {
    this.reachable();
    const c = this.containers.get(uuid);
    if (!c) throw instanceNotFound(uuid);
    return c;
  }

  private reachable(): void {
    if (this.unavailable) throw agentError('RUNTIME_UNAVAILABLE', 'container runtime unavailable');
  }
}
