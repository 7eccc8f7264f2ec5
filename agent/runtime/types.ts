/**
 * The agent's view of the container engine. Every container is keyed by the instance uuid it
 * hosts; engine ids (container ids, names) never leave the implementation. Images are keyed by
 * the engine's content-addressed image id (`sha256:<config digest>`), never by name or tag.
 *
 * Errors are BerthErrors with the agent's codes:
 * - INSTANCE_NOT_FOUND   no Berth container for that uuid
 * - INSTANCE_INVALID_STATE the operation does not apply in the container's current state
 * - IMAGE_NOT_FOUND      the image id is not present when a container is created from it
 * - IMAGE_FETCH_FAILED   an image archive could not be loaded (bad archive, broken stream), or a pull failed
 * - RUNTIME_UNAVAILABLE  the engine cannot be reached (retryable)
 * - RUNTIME_ERROR        the engine refused for another reason
 */
import type { Duplex } from 'node:stream';
import type { FlavorSpec, VifSpec } from '../client/types.js';

/** Engine-level states, as Docker names them. */
export type ContainerState = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead';

/**
 * Every label under this prefix on a container is Berth's to set. Docker copies an image's labels
 * onto containers made from it, and an image is anybody's (a tenant's `LABEL`, or a snapshot,
 * whose commit keeps the source instance's labels): at create, each label of the image under the
 * prefix that Berth does not set itself is overridden with '' (Docker cannot remove one), and ''
 * reads as absent.
 */
export const BERTH_LABEL_PREFIX = 'org.openstack.berth.';

export const LABEL_INSTANCE = 'org.openstack.berth.instance';
export const LABEL_PROJECT = 'org.openstack.berth.project';
export const LABEL_IMAGE = 'org.openstack.berth.image';

/** The compute host ([DEFAULT] host) a container belongs to; several hosts may share one engine. */
export const LABEL_HOST = 'org.openstack.berth.host';

/**
 * Labels of a container the agent plugs into its project network itself (`[docker]
 * network_attach = agent`): the engine sees it on no network, so its network, address and MAC
 * live here, where a restarted agent or engine finds them again.
 */
export const LABEL_NETWORK = 'org.openstack.berth.network';
export const LABEL_IPV4 = 'org.openstack.berth.ipv4';
export const LABEL_MAC = 'org.openstack.berth.mac';

/**
 * The Neutron VIFs of a container (JSON list of VifSpec, in the guest's interface order): the
 * engine sees it on no network; the agent plugs each after every start, also after its own restart.
 */
export const LABEL_VIFS = 'org.openstack.berth.vifs';

/**
 * Whether a container's labels make it `host`'s. Containers from before the host label existed
 * have none and stay with whichever host sees them, as they did then.
 */
export function ownedBy(labels: Record<string, string> | null | undefined, host: string | undefined): boolean {
  const owner = labels?.[LABEL_HOST];
  return owner === undefined || owner === '' || host === undefined || owner === host;
}

/**
 * `details.reason` of a create that failed because the agent's picture of the project network
 * was out of date (the address was taken, or the network was removed): worth one retry after
 * re-reading the network from the engine.
 */
export const STALE_NETWORK = 'stale_network';

export const containerName = (uuid: string): string => `berth-${uuid}`;

export interface ContainerSpec {
  uuid: string;
  /** Engine image id (`sha256:...`); the image must already be present. */
  imageId: string;
  /** Glance id the image came from, recorded as a label so reconciliation can report it. */
  glanceImageId: string;
  projectId: string;
  hostname: string;
  flavor: FlavorSpec;
  /** The project network and the address the container takes on it; absent: the engine's default bridge. */
  network?: ContainerNetwork;
  /** Neutron VIFs the agent plugs after each start (instead of `network`). */
  vifs?: VifSpec[];
  /** Host paths bind-mounted read-only into the container (config drive, authorized_keys). */
  mounts?: ReadOnlyMount[];
  /** Local volumes' filesystems (agent/volumes/), bind-mounted read-write. */
  volumes?: VolumeBind[];
}

export interface ContainerNetwork {
  name: string;
  ipv4: string;
  macAddress: string;
}
/** A host folder bound read-write at `target` in the container. */
export interface VolumeBind {
  source: string;
  target: string;
}
export interface ReadOnlyMount {
  source: string;
  target: string;
}

/** An engine network as the agent sees it; `projectId` is set on Berth's project networks only. */
export interface NetworkInfo {
  name: string;
  projectId: string | null;
  subnets: string[];
  /** false: another compute host sharing the engine made it (its host label); never pruned here. Absent: true. */
  ownedHere?: boolean;
}

export interface NetworkSpec {
  name: string;
  projectId: string;
  subnet: string;
  gateway: string;
}

export interface ContainerInfo {
  uuid: string;
  state: ContainerState;
  /** Set when the engine killed the container for exceeding its memory limit. */
  oomKilled: boolean;
  exitCode: number | null;
  projectId: string | null;
  glanceImageId: string | null;
  ipAddress: string | null;
  createdAt: string | null;
  startedAt: string | null;
  /** The guest's first process on the host while the container runs (mounts into its namespace); absent when the runtime does not say. */
  pid?: number | null;
}

/** Resource use of one container, as the engine measures it. */
export interface ContainerStats {
  /** `percent`: share of one CPU × 100 over the engine's sampling interval; null when it has no interval (not running). */
  cpu: { total_usage_ns: number; percent: number | null; online_cpus: number | null };
  /** Usage without reclaimable page cache; limit as the cgroup has it. */
  memory: { usage_bytes: number; limit_bytes: number | null };
  network: { rx_bytes: number; tx_bytes: number; rx_packets: number; tx_packets: number };
  pids: number | null;
}

/** An image present in the engine. */
export interface ImageInfo {
  imageId: string;
  sizeBytes: number;
  /** The image's layers by diff id, base first (the engine's RootFS.Layers); absent when the runtime does not say. */
  layers?: string[];
}

export interface ContainerRuntime {
  /** True when the engine answers. Never throws. */
  ping(): Promise<boolean>;

  /** True when an image with this engine id is present. */
  hasImage(imageId: string): Promise<boolean>;
  /** The image with this engine id, or null when it is absent. */
  inspectImage(imageId: string): Promise<ImageInfo | null>;
  /** Engine ids of the images of every container in the engine, any state, any host, Berth's or not. */
  imagesInUse(): Promise<Set<string>>;

  /**
   * Loads a docker-archive tar, with no name: whatever tags the archive names are not applied.
   * Idempotent: loading an image already present is a no-op. Resolves with the ids of the images
   * the archive held, as the engine computed them (the caller checks the one it expects is among
   * them: the image being present says nothing of what this archive held); IMAGE_FETCH_FAILED
   * when it could not.
   */
  loadImage(archive: NodeJS.ReadableStream): Promise<string[]>;

  /**
   * Pulls `reference` (`HOST:PORT/REPOSITORY@sha256:…` or `…:TAG`) from its registry; the engine
   * fetches only the layers it lacks. Post-condition: the image is present, or it threw
   * IMAGE_FETCH_FAILED (unknown image, registry unreachable or refusing; RUNTIME_UNAVAILABLE when
   * the engine itself is). Resolves with the engine id of what `reference` now names.
   */
  pullImage(reference: string): Promise<string>;

  /**
   * Creates and starts the container for `spec.uuid`, labelled with instance, project and
   * Glance image. Idempotent: when the uuid already has a container, makes no second one and
   * returns it with `created: false` (starting it only if it was never started).
   * Post-condition: the container is running, or it threw and no container made by this call
   * remains. A static address another container holds fails with RUNTIME_ERROR whose
   * `details.reason` is STALE_NETWORK, as does a network that no longer exists.
   */
  createContainer(spec: ContainerSpec): Promise<{ info: ContainerInfo; created: boolean }>;

  /** The container for `uuid`, or null when there is none. */
  inspect(uuid: string): Promise<ContainerInfo | null>;

  /**
   * Every Berth-labelled container of this runtime's host (see ownedBy), whatever its state;
   * containers without the instance label, or labelled for another host, are never listed.
   */
  list(): Promise<ContainerInfo[]>;

  /** SIGTERM, then SIGKILL after `timeoutSec`; also stops a paused container. A no-op when already stopped. */
  stop(uuid: string, timeoutSec: number): Promise<void>;
  /** A no-op when already running; INSTANCE_INVALID_STATE when paused. */
  start(uuid: string): Promise<void>;
  /** Stop (with `timeoutSec` grace) then start, from any state. */
  restart(uuid: string, timeoutSec: number): Promise<void>;
  /** INSTANCE_INVALID_STATE unless running. */
  kill(uuid: string, signal?: string): Promise<void>;
  /** Freezes every process. INSTANCE_INVALID_STATE unless running. */
  pause(uuid: string): Promise<void>;
  /** INSTANCE_INVALID_STATE unless paused. */
  unpause(uuid: string): Promise<void>;

  /**
   * Attaches a Neutron bridge VIF to an existing container (nova's attach_interface): plugged at
   * once when it runs, and after every later start. Resolves with the guest interface name (the
   * first free ethN). Idempotent per port. INSTANCE_NOT_FOUND when there is no container.
   */
  attachVif(uuid: string, vif: VifSpec): Promise<string>;
  /** Detaches a port's VIF: its pair removed now, and no later start plugs it. A port not attached, or a container gone, is fine. */
  detachVif(uuid: string, portId: string): Promise<void>;

  /**
   * Removes the container whatever its state; returns what it was. Succeeds (null) when it is
   * already gone. The host ends of its VIFs go with it.
   */
  remove(uuid: string, timeoutSec: number): Promise<ContainerInfo | null>;

  /**
   * One sample of the container's resource use; for a running container the engine measures CPU
   * over about a second, so this takes that long. INSTANCE_NOT_FOUND when there is no container.
   */
  stats(uuid: string): Promise<ContainerStats>;

  /**
   * Whether the container can have a console: INSTANCE_NOT_FOUND without a container,
   * INSTANCE_INVALID_STATE unless running, CONSOLE_UNAVAILABLE when it was created without an
   * open stdin (by a Berth without consoles; a rebuild creates it anew with one).
   */
  checkConsole(uuid: string): Promise<void>;
  /**
   * The container's console: what is written goes to its stdin, what is read is its stdout and
   * stderr as they come (no log frames). The same refusals as checkConsole. Closing it leaves
   * the guest's stdin open for the next console.
   */
  attachConsole(uuid: string): Promise<Duplex>;

  /** The last `tail` lines of stdout and stderr, at most `maxBytes` (the newest bytes are kept). */
  logs(uuid: string, opts: { tail: number; maxBytes: number }): Promise<string>;

  /**
   * Applies `flavor`'s limits (memory, swap, CPU, pids: limits.ts) to the existing container in
   * place, in any state; a running guest keeps running. INSTANCE_NOT_FOUND when there is none;
   * INVALID_INPUT when the engine cannot change the kind of CPU bound in place (vCPUs to
   * quota:cpu_quota/cpu_period or back), leaving the container as it was.
   */
  updateLimits(uuid: string, flavor: FlavorSpec): Promise<void>;

  /**
   * Commits the container's filesystem to a new untagged image and returns its engine id. Does
   * not pause: callers freeze the guest first when they need a consistent image.
   */
  commit(uuid: string): Promise<string>;
  /** A docker-archive of one image, streamed. IMAGE_NOT_FOUND when it is absent. */
  exportImage(imageId: string): Promise<NodeJS.ReadableStream>;
  /** Removes an image no container uses; succeeds when it is already gone. */
  removeImage(imageId: string): Promise<void>;

  /** Every network of the engine, Berth's or not, with its IPv4 subnets. */
  listNetworks(): Promise<NetworkInfo[]>;
  /**
   * Creates an isolated bridge network labelled with its project. Returns false and creates
   * nothing when the name is taken or the subnet overlaps another network's.
   */
  createNetwork(spec: NetworkSpec): Promise<boolean>;
  /** Removes a network. False when a container in any state still uses it; true when it is gone. */
  removeNetwork(name: string): Promise<boolean>;
  /** IPv4 addresses that containers in any state hold, or will take, on the network. */
  networkAddresses(name: string): Promise<string[]>;
}
