import { Readable } from 'node:stream';
import { BerthError } from '../../common/errors.js';
import { readBody } from '../../common/http-client.js';
import type { Logger } from '../../common/log.js';
import { untaggedArchive } from '../archive-untag.js';
import { agentError, instanceNotFound, invalidState } from '../errors.js';
import { DockerApi, refusal } from './docker-api.js';
import { inspectContainer, toContainerInfo, type DockerContainer } from './docker-inspect.js';
import { DockerHostNetworking, type HostNetworking, type PlugWatch } from '../network/host-networking.js';
import { toContainerStats, type DockerStats } from './docker-stats.js';
import { flavorLimits, GUEST_CAPABILITIES } from './limits.js';
import { readLogFrames } from './log-frames.js';
import {
  BERTH_LABEL_PREFIX, containerName, LABEL_HOST, LABEL_IMAGE, LABEL_INSTANCE, LABEL_IPV4, LABEL_MAC, LABEL_NETWORK, LABEL_PROJECT, ownedBy, STALE_NETWORK,
  type ContainerInfo, type ContainerNetwork, type ContainerRuntime, type ContainerSpec, type ContainerStats, type ImageInfo, type NetworkInfo, type NetworkSpec,
} from './types.js';

const LIST_INSPECT_WIDTH = 16;

export type RestartPolicy = 'no' | 'unless-stopped';

/**
 * Who connects a container to its project network: `agent` plugs a veth pair into the network's
 * bridge right after each start (fast; eth0 appears just after the guest's first process
 * started), `engine` lets dockerd attach it before the guest starts (with its embedded DNS, which
 * costs 50–95 ms per container). See docs/operator-guide.md.
 */
export type NetworkAttach = 'agent' | 'engine';

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
}


/** ContainerRuntime on the Docker Engine API. Containers are addressed by the name berth-<uuid>. */
export class DockerRuntime implements ContainerRuntime {
  private readonly api: DockerApi;
  /** Project networks on the engine, and the veth pairs of `network_attach = agent`. */
  private readonly net: HostNetworking;
  private readonly imageLabels = new Map<string, string[]>();
  constructor(private readonly opts: DockerRuntimeOptions) {
    this.api = new DockerApi(opts.hostUrl, opts.apiVersion);
    this.net = new DockerHostNetworking(this.api, opts.host);
  }

  private get attach(): NetworkAttach { return this.opts.networkAttach ?? 'agent'; }

  async ping(): Promise<boolean> {
    try {
      const res = await this.api.json<unknown>({ path: '/_ping', what: 'answer a ping', timeoutMs: 5000 });
      return res.status === 200;
    } catch {
      return false;
    }
  }

  async hasImage(imageId: string): Promise<boolean> {
    const res = await this.api.json<{ Id?: string }>({ path: `/images/${encodeURIComponent(imageId)}/json`, accept: [404], what: 'inspect an image' });
    return res.status === 200 && res.body?.Id === imageId;
  }

  async inspectImage(imageId: string): Promise<ImageInfo | null> {
    const res = await this.api.json<{ Id?: string; Size?: number }>({ path: `/images/${encodeURIComponent(imageId)}/json`, accept: [404], what: 'inspect an image' });
    if (res.status !== 200 || res.body?.Id !== imageId) return null;
    return { imageId, sizeBytes: res.body.Size ?? 0 };
  }

  async imagesInUse(): Promise<Set<string>> {
    const res = await this.api.json<Array<{ ImageID?: string }>>({ path: '/containers/json', query: { all: 1 }, what: 'list containers' });
    return new Set((res.body ?? []).map((c) => c.ImageID).filter((id): id is string => typeof id === 'string'));
  }

  async stats(uuid: string): Promise<ContainerStats> {
    if (!(await this.inspect(uuid))) throw instanceNotFound(uuid);
    const res = await this.api.json<DockerStats>({
      path: `/containers/${containerName(uuid)}/stats`, query: { stream: 'false' }, accept: [404], timeoutMs: 30_000, what: 'read the container\'s stats',
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
  async loadImage(archive: NodeJS.ReadableStream): Promise<string[]> {
    const download = archive instanceof Readable ? archive : new Readable().wrap(archive);
    let sourceError: unknown;
    download.once('error', (err) => { sourceError = err; });
    const source = untaggedArchive(download);
    let refusedArchive: unknown;
    source.once('error', (err) => { if (sourceError === undefined) refusedArchive = err; });
    let text: string;
    let status: number;
    try {
      const res = await this.api.raw({
        method: 'POST', path: '/images/load', query: { quiet: 1 }, stream: source,
        headers: { 'content-type': 'application/x-tar' }, timeoutMs: this.opts.loadTimeoutMs ?? 600_000, what: 'load an image',
      });
      status = res.status;
      text = (await readBody(res.body, 16 * 1024 * 1024)).toString('utf8');
    } catch (err) {
      if (sourceError !== undefined) throw agentError('IMAGE_FETCH_FAILED', 'image download broke off while loading it into the runtime', {}, sourceError);
      if (refusedArchive !== undefined) throw refusedArchive;
      throw err;
    }
    // The engine may have answered before the rewrite found what it refuses; what it loaded is
    // then caught by the caller's image id check, and the refusal is the error to report.
    if (refusedArchive !== undefined) throw refusedArchive;
    const problem = streamProblem(status, text);
    if (problem !== undefined) throw agentError('IMAGE_FETCH_FAILED', `container runtime could not load the image archive: ${problem}`);
    return loadedIds(text);
  }

  async pullImage(reference: string): Promise<string> {
    const at = reference.lastIndexOf('@');
    const colon = reference.lastIndexOf(':');
    // fromImage takes the repository, tag the tag or digest; a colon before the last slash is a port.
    const [repository, tag] = at > 0 ? [reference.slice(0, at), reference.slice(at + 1)]
      : colon > reference.lastIndexOf('/') ? [reference.slice(0, colon), reference.slice(colon + 1)] : [reference, 'latest'];
    const res = await this.api.raw({
      method: 'POST', path: '/images/create', query: { fromImage: repository, tag },
      timeoutMs: this.opts.loadTimeoutMs ?? 600_000, what: 'pull an image',
    });
    // The answer is a progress stream; a failure after the headers arrives as a message with `error`.
    const text = (await readBody(res.body, 16 * 1024 * 1024)).toString('utf8');
    const problem = streamProblem(res.status, text);
    if (problem !== undefined) throw agentError('IMAGE_FETCH_FAILED', `container runtime could not pull ${reference}: ${problem}`, { reference });
    const pulled = await this.api.json<{ Id?: string }>({ path: `/images/${encodeURIComponent(reference)}/json`, accept: [404], what: 'inspect a pulled image' });
    if (pulled.status !== 200 || typeof pulled.body?.Id !== 'string') throw agentError('IMAGE_FETCH_FAILED', `container runtime pulled ${reference} but does not have it`, { reference });
    return pulled.body.Id;
  }

  async createContainer(spec: ContainerSpec): Promise<{ info: ContainerInfo; created: boolean }> {
    if (spec.network && this.attach === 'agent') await this.checkAddressFree(spec.uuid, spec.network);
    const inherited = await this.berthLabelsOfImage(spec.imageId);
    if (inherited === null) throw agentError('IMAGE_NOT_FOUND', `image ${spec.glanceImageId} is not present in the container runtime`, { image_id: spec.glanceImageId });
    const res = await this.api.json<{ Id: string }>({
      method: 'POST', path: '/containers/create', query: { name: containerName(spec.uuid) },
      body: createBody(spec, this.opts.restartPolicy ?? 'no', this.opts.host, this.attach, inherited), accept: [404, 409], what: 'create the container',
    });
    if (res.status === 404 && spec.network && /network/i.test(res.message)) {
      throw agentError('RUNTIME_ERROR', `the network of instance ${spec.uuid} vanished while it was being created`, { uuid: spec.uuid, reason: STALE_NETWORK });
    }
    if (res.status === 404) throw agentError('IMAGE_NOT_FOUND', `image ${spec.glanceImageId} is not present in the container runtime`, { image_id: spec.glanceImageId });
    if (res.status === 409) return { info: await this.startIfNeverStarted(spec.uuid), created: false };
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
   * The labels under Berth's prefix an image would pass on to its containers; null when the image
   * is not present. An image id names fixed content, so the answer is kept.
   */
  private async berthLabelsOfImage(imageId: string): Promise<string[] | null> {
    const known = this.imageLabels.get(imageId);
    if (known) return known;
    const res = await this.api.json<{ Id?: string; Config?: { Labels?: Record<string, string> | null } }>({
      path: `/images/${encodeURIComponent(imageId)}/json`, accept: [404], what: 'inspect an image',
    });
    if (res.status !== 200 || res.body?.Id !== imageId) return null;
    const keys = Object.keys(res.body.Config?.Labels ?? {}).filter((k) => k.startsWith(BERTH_LABEL_PREFIX));
    if (this.imageLabels.size >= 4096) this.imageLabels.clear();
    this.imageLabels.set(imageId, keys);
    return keys;
  }

  /**
   * What the engine would refuse at start for a container it attaches itself: another plugged
   * container (any state) labelled with the address, or a network that is gone. Both are
   * STALE_NETWORK. (Containers the engine attached are in the addresses ProjectNetworks reads.)
   */
  private async checkAddressFree(uuid: string, net: ContainerNetwork): Promise<void> {
    const [holders] = await Promise.all([this.net.pluggedHolders(net.name, net.ipv4), this.net.bridge(net.name)]);
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
    const c = await inspectContainer(this.api, uuid);
    return c ? toContainerInfo(c) : null;
  }


  /**
   * Keeps every container this runtime plugged in plugged whatever starts it (see DockerPlugs.follow).
   * The owner calls it once and stops the watch on shutdown.
   */
  keepPlugged(log: Logger): PlugWatch { return this.net.follow(log); }

  async list(): Promise<ContainerInfo[]> {
    const res = await this.api.json<Array<{ Labels?: Record<string, string> }>>({
      path: '/containers/json', query: { all: 1, filters: JSON.stringify({ label: [LABEL_INSTANCE] }) }, what: 'list containers',
    });
    // Docker's label filter cannot say "this host or no host label", so that part is done here.
    const uuids = (res.body ?? []).filter((c) => ownedBy(c.Labels, this.opts.host))
      .map((c) => c.Labels?.[LABEL_INSTANCE]).filter((u): u is string => typeof u === 'string');
    // A container removed between the two calls inspects as null; an unreachable engine must
    // fail the whole list, or the caller would take live instances for deleted ones.
    // A bounded number in flight: hundreds of parallel inspects only queue up in dockerd and
    // hold every answer in this process's memory at once.
    const infos: (ContainerInfo | null)[] = [];
    for (let i = 0; i < uuids.length; i += LIST_INSPECT_WIDTH) {
      infos.push(...await Promise.all(uuids.slice(i, i + LIST_INSPECT_WIDTH).map((u) => this.inspect(u).catch((err: unknown) => {
        if (err instanceof BerthError && err.code === 'RUNTIME_UNAVAILABLE') throw err;
        return null;
      }))));
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
  async kill(uuid: string, signal = 'SIGKILL'): Promise<void> { await this.action(uuid, 'kill', { signal }); }
  async pause(uuid: string): Promise<void> { await this.action(uuid, 'pause'); }
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
    // A graceful stop first, so the guest sees SIGTERM; force-remove kills whatever is left.
    if (info.state === 'running' && timeoutSec > 0) await this.stop(uuid, timeoutSec).catch(() => undefined);
    const res = await this.api.json<unknown>({
      method: 'DELETE', path: `/containers/${containerName(uuid)}`, query: { force: 1, v: 1 }, accept: [404, 409], what: 'remove the container',
    });
    if (res.status === 409) await this.waitGone(uuid);
    this.net.forget(uuid);
    return info;
  }

  async logs(uuid: string, opts: { tail: number; maxBytes: number }): Promise<string> {
    if (!(await this.inspect(uuid))) throw instanceNotFound(uuid);
    if (opts.tail <= 0) return '';
    const res = await this.api.raw({ path: `/containers/${containerName(uuid)}/logs`, query: { stdout: 1, stderr: 1, tail: opts.tail }, what: 'read the console log' });
    if (res.status === 404) { res.body.resume(); throw instanceNotFound(uuid); }
    if (res.status >= 300) throw refusal('read the console log', res.status, (await readBody(res.body, 65536)).toString('utf8'));
    return readLogFrames(res.body, opts.maxBytes);
  }

  async commit(uuid: string): Promise<string> {
    // A commit keeps the container's labels in the image: Berth's (instance, project, network,
    // address) are blanked, so a snapshot neither tells its readers about the instance it came
    // from nor carries them to the containers made from it.
    const c = await inspectContainer(this.api, uuid);
    if (!c) throw instanceNotFound(uuid);
    const berth = Object.keys(c.Config?.Labels ?? {}).filter((k) => k.startsWith(BERTH_LABEL_PREFIX) && /^[A-Za-z0-9._-]+$/.test(k));
    const res = await this.api.json<{ Id?: string }>({
      method: 'POST', path: '/commit',
      query: { container: containerName(uuid), pause: 'false', ...(berth.length ? { changes: `LABEL ${berth.map((k) => `${k}=""`).join(' ')}` } : {}) },
      accept: [404], timeoutMs: 600_000, what: 'commit the container',
    });
    if (res.status === 404) throw instanceNotFound(uuid);
    if (typeof res.body?.Id !== 'string') throw agentError('RUNTIME_ERROR', `container runtime gave no image id for the commit of instance ${uuid}`);
    return res.body.Id;
  }

  async exportImage(imageId: string): Promise<NodeJS.ReadableStream> {
    // Docker answers a missing image here with a 500, so ask first.
    if (!(await this.hasImage(imageId))) throw agentError('IMAGE_NOT_FOUND', 'image to export is not present in the container runtime');
    const res = await this.api.raw({ path: `/images/${encodeURIComponent(imageId)}/get`, timeoutMs: 600_000, what: 'export an image' });
    if (res.status === 404) { res.body.resume(); throw agentError('IMAGE_NOT_FOUND', 'image to export is not present in the container runtime'); }
    if (res.status >= 300) throw refusal('export an image', res.status, (await readBody(res.body, 65536)).toString('utf8'));
    return res.body;
  }

  async removeImage(imageId: string): Promise<void> {
    await this.api.json<unknown>({ method: 'DELETE', path: `/images/${encodeURIComponent(imageId)}`, accept: [404, 409], what: 'remove an image' });
  }

  listNetworks(): Promise<NetworkInfo[]> { return this.net.list(); }
  createNetwork(spec: NetworkSpec): Promise<boolean> { return this.net.create(spec); }
  removeNetwork(name: string): Promise<boolean> { return this.net.remove(name); }
  networkAddresses(name: string): Promise<string[]> { return this.net.addresses(name); }

  private async action(uuid: string, verb: string, query: Record<string, string | number> = {}, timeoutMs?: number): Promise<void> {
    const res = await this.api.json<unknown>({
      method: 'POST', path: `/containers/${containerName(uuid)}/${verb}`, query, accept: [404, 409], timeoutMs, what: `${verb} the container`,
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

/** The Engine API body of a create; exported so that benchmarks can send the same one straight to dockerd. */
/**
 * `inherited`: the image's labels under Berth's prefix, each overridden with '' unless Berth sets
 * it here (see BERTH_LABEL_PREFIX).
 */
export function createBody(spec: ContainerSpec, restartPolicy: RestartPolicy, host: string | undefined, attach: NetworkAttach, inherited: readonly string[] = []): Record<string, unknown> {
  const net = spec.network;
  const byEngine = net && attach === 'engine' ? net : undefined;
  const byAgent = net && attach === 'agent' ? net : undefined;
  return {
    Image: spec.imageId,
    Hostname: spec.hostname,
    ...(byEngine ? { MacAddress: byEngine.macAddress } : {}),
    ...(byEngine ? { NetworkingConfig: { EndpointsConfig: { [byEngine.name]: { IPAMConfig: { IPv4Address: byEngine.ipv4 } } } } } : {}),
    Labels: {
      ...Object.fromEntries(inherited.map((k) => [k, ''])),
      [LABEL_INSTANCE]: spec.uuid, [LABEL_PROJECT]: spec.projectId, [LABEL_IMAGE]: spec.glanceImageId, ...(host ? { [LABEL_HOST]: host } : {}),
      ...(byAgent ? { [LABEL_NETWORK]: byAgent.name, [LABEL_IPV4]: byAgent.ipv4, [LABEL_MAC]: byAgent.macAddress } : {}),
    },
    Tty: false,
    OpenStdin: false,
    HostConfig: {
      ...flavorLimits(spec.flavor),
      Privileged: false,
      SecurityOpt: ['no-new-privileges'],
      CapDrop: ['ALL'],
      CapAdd: [...GUEST_CAPABILITIES],
      RestartPolicy: { Name: restartPolicy },
      ...(byEngine ? { NetworkMode: byEngine.name } : {}),
      // The agent plugs eth0 in after start; the guest's own name resolves to its address.
      ...(byAgent ? { NetworkMode: 'none', ExtraHosts: [`${spec.hostname}:${byAgent.ipv4}`] } : {}),
      Mounts: (spec.mounts ?? []).map((m) => ({ Type: 'bind', Source: m.source, Target: m.target, ReadOnly: true })),
      // Bounded on disk; the console endpoint reads from this log.
      LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '3' } },
    },
  };
}

function startedInfo(spec: ContainerSpec, createdAt: string): ContainerInfo {
  return {
    uuid: spec.uuid, state: 'running', oomKilled: false, exitCode: null, projectId: spec.projectId, glanceImageId: spec.glanceImageId,
    ipAddress: spec.network?.ipv4 ?? null, createdAt, startedAt: new Date().toISOString(),
  };
}

function vanished(uuid: string): never {
  throw agentError('RUNTIME_ERROR', `container for instance ${uuid} vanished while it was being created`, { uuid });
}

/** Docker only notices a taken static address at start, answering "Address already in use". */
function addressConflict(err: unknown, spec: ContainerSpec): unknown {
  const text = err instanceof BerthError && err.cause instanceof Error ? err.cause.message : '';
  if (!spec.network || !/address already in use/i.test(text)) return err;
  return addressInUse(spec.uuid, spec.network.ipv4, err);
}

function addressInUse(uuid: string, ipv4: string, cause?: unknown): BerthError {
  return agentError('RUNTIME_ERROR', `address ${ipv4} of instance ${uuid} is already in use on its network`, { uuid, reason: STALE_NETWORK }, cause);
}

function messageOf(text: string): string | undefined {
  try {
    const m = (JSON.parse(text) as { message?: unknown }).message;
    return typeof m === 'string' ? m : undefined;
  } catch {
    return text.trim() ? text.trim().slice(0, 300) : undefined;
  }
}

/**
 * The image ids a load reports: an untagged image is reported as `Loaded image ID: sha256:…`
 * (moby image/tar/load.go), one message per image.
 */
function loadedIds(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    let msg: { stream?: unknown };
    try { msg = JSON.parse(line) as typeof msg; } catch { continue; }
    const m = typeof msg.stream === 'string' ? /^Loaded image ID: (sha256:[0-9a-f]{64})\s*$/.exec(msg.stream) : null;
    if (m) out.push(m[1]!);
  }
  return out;
}

/**
 * What went wrong in a load or pull: an error status with its message, or, since those answers
 * are streams of JSON messages sent after a 200, a message carrying `error`.
 */
function streamProblem(status: number, text: string): string | undefined {
  if (status >= 300) return messageOf(text) ?? `HTTP ${status}`;
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    let msg: { error?: unknown; errorDetail?: { message?: unknown } };
    try { msg = JSON.parse(line) as typeof msg; } catch { continue; }
    if (msg.error !== undefined || msg.errorDetail !== undefined) return String(msg.errorDetail?.message ?? msg.error);
  }
  return undefined;
}

