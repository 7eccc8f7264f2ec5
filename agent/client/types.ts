/**
 * The driver↔agent contract (HTTP/JSON, `/v1`, bearer token). Instances are keyed by instance
 * uuid; container ids never cross this boundary. Errors come back as
 * `{"error": {"code", "message", "details"}}` with the codes in AGENT_ERROR_CODES (./errors.ts).
 * The HTTP shape is documented in docs/agent-api.md.
 */

export type InstancePowerState = 'running' | 'paused' | 'stopped' | 'crashed' | 'missing';

export interface FlavorSpec {
  vcpus: number;
  memory_mb: number;
  root_gb: number;
  swap: number;
  extra_specs: Record<string, string>;
}

/** What the driver asks for when it creates an instance (PUT /v1/instances/{uuid}). */
export interface InstanceSpec {
  /** Glance image id; the agent fetches it from the image store if the host lacks it. */
  image_id: string;
  flavor: FlavorSpec;
  name: string;
  hostname: string;
  project_id: string;
  user_id: string;
  metadata: Record<string, string>;
  /** base64, as nova carries it; may be null. */
  user_data: string | null;
  key_data: string | null;
  /** Name of the key pair key_data came from; the config drive's public_keys is keyed by it ("default" when absent). */
  key_name?: string | null;
  /** Fixed IPv4 address from the instance's network info, when nova gave one. */
  fixed_ip: string | null;
  /** Request id from the RPC context, logged by the agent. */
  request_id?: string;
  /**
   * Neutron ports bound to this host as `bridge` VIFs, in the guest's order (eth0, eth1, ...).
   * When given, the instance is on these and on no project network: the agent plugs each after
   * every start of the container (nova mode with Neutron; see docs/agent-api.md).
   */
  vifs?: VifSpec[];
}

/** One Neutron VIF to plug (the compute side's plug of a `bridge` VIF, like os-vif's linux_bridge). */
export interface VifSpec {
  portId: string;
  /** Host end of the pair: `tap` + port id (14 characters), the name the linuxbridge agent watches for. */
  tap: string;
  /** The network's bridge: `brq` + network id (14 characters). */
  bridge: string;
  mac: string;
  mtu: number;
  /** IPv4 addresses with their prefix; empty: the guest asks Neutron's DHCP. */
  addresses: Array<{ address: string; prefix: number }>;
  gateway: string | null;
  routes: Array<{ destination: string; nexthop: string }>;
  /** The subnets' DNS servers. */
  dns: string[];
}

/** What the agent reports about one instance. */
export interface InstanceStatus {
  uuid: string;
  power_state: InstancePowerState;
  image_id: string | null;
  project_id: string | null;
  ip_address: string | null;
  created_at: string | null;
  started_at: string | null;
  exit_code: number | null;
}

/**
 * One sample of an instance's resource use (GET /v1/instances/{uuid}/stats). CPU percent is over
 * Docker's sampling interval (about a second) and counts one full CPU as 100; null when the
 * instance is not running.
 */
export interface InstanceStats {
  uuid: string;
  power_state: InstancePowerState;
  cpu: { total_usage_ns: number; percent: number | null; online_cpus: number | null };
  memory: { usage_bytes: number; limit_bytes: number | null };
  network: { rx_bytes: number; tx_bytes: number; rx_packets: number; tx_packets: number };
  pids: number | null;
  /** Seconds since the instance last started; null when it is not running. */
  uptime_seconds: number | null;
  sampled_at: string;
}

/** A Glance image as this host holds it (GET/PUT /v1/images/{glance_id}). */
export interface HostImage {
  image_id: string;
  present: boolean;
  /** The content-addressed engine id the image store records (`sha256:…`). */
  docker_image_id: string;
  size_bytes: number | null;
  /** Whether this agent loaded it (and so may remove it when unused; see [agent] image_cache_max_unused_seconds). */
  loaded_by_agent: boolean;
}

export type InstanceAction =
  | { action: 'start' }
  | { action: 'stop'; timeout?: number }
  | { action: 'reboot'; hard?: boolean; timeout?: number }
  | { action: 'pause' }
  | { action: 'unpause' }
  | { action: 'suspend' }
  | { action: 'resume' }
  /** nova's trigger_crash_dump: SIGQUIT to the guest's init, running instances only; the power state is unchanged. */
  | { action: 'crash_dump' };

export type { AgentErrorCode } from './errors.js';

/**
 * Progress of a snapshot (POST /v1/instances/{uuid}/snapshot), keyed by the Glance image it fills:
 * freezing (pause) → committing → uploading (the guest runs again) → active, or failed.
 */
export type SnapshotState = 'freezing' | 'committing' | 'uploading' | 'active' | 'failed';

export interface SnapshotTask {
  image_id: string;
  instance_uuid: string;
  state: SnapshotState;
  /** Bytes of the image export sent to the image store so far. */
  bytes_uploaded: number;
  /**
   * Bytes of layers left out because the receiver has them (a snapshot for a move with
   * `omit_base_layers`: the layers of the image the instance was created from); absent otherwise.
   */
  omitted_bytes?: number;
  error: { code: string; message: string } | null;
  created_at: string;
  updated_at: string;
}

/**
 * Where to connect for a serial console, and what gets through, once, until `expires_at`: the
 * `CONNECT` path of a token lease, or (null) the next connection to the port, for a port lease.
 */
export interface SerialConsoleGrant {
  host: string;
  port: number;
  path: string | null;
  expires_at: string;
}

/** `token`: the connection names the grant's path first; `port`: the next connection to the port gets through (a proxy that sends nothing first). */
export type SerialConsoleLease = 'token' | 'port';

/**
 * The driver's view of the agent. Every method is safe to repeat:
 * - createInstance: idempotent; a repeat for the same uuid returns the existing instance and
 *   makes no second container. Post-condition: the instance is running, or it threw and left no
 *   container behind.
 * - deleteInstance: succeeds when the instance is already gone. The instance's local volumes are
 *   detached, unless `keepVolumes` (a rebuild, whose next container binds them again).
 */
export interface AgentClient extends AgentSnapshotClient, AgentImageClient {
  createInstance(uuid: string, spec: InstanceSpec): Promise<InstanceStatus>;
  getInstance(uuid: string): Promise<InstanceStatus | null>;
  listInstances(): Promise<InstanceStatus[]>;
  deleteInstance(uuid: string, opts?: { timeout?: number; keepVolumes?: boolean }): Promise<void>;
  instanceAction(uuid: string, action: InstanceAction): Promise<InstanceStatus>;
  /**
   * Applies a flavor's limits to the instance in place (resize on the same host); the guest keeps
   * its power state. Repeatable. INVALID_INPUT when the engine cannot change the kind of CPU bound.
   */
  resizeInstance(uuid: string, flavor: FlavorSpec): Promise<InstanceStatus>;
  consoleLog(uuid: string, tailLines?: number): Promise<string>;
  /**
   * A one-time, expiring connection to the instance's serial console (a TCP endpoint the agent
   * opens on demand; docs/agent-api.md). INSTANCE_NOT_FOUND, INSTANCE_INVALID_STATE unless
   * running, CONSOLE_UNAVAILABLE (consoles disabled, or the container has no open stdin),
   * CONSOLE_PORTS_EXHAUSTED.
   */
  openSerialConsole(uuid: string, kind?: SerialConsoleLease): Promise<SerialConsoleGrant>;
  /** The port of the instance's open console endpoint, or null when it has none. */
  serialConsolePort(uuid: string): Promise<number | null>;
  /**
   * Attaches a Neutron bridge VIF to an instance (nova's attach_interface): plugged now when it
   * runs and after every start. Resolves with the guest's interface name. Idempotent per port;
   * INSTANCE_NOT_FOUND when the instance is gone.
   */
  attachVif(uuid: string, vif: VifSpec): Promise<{ port_id: string; ifname: string }>;
  /** Detaches a port's VIF (nova's detach_interface); a port not attached, or an instance gone, is fine. */
  detachVif(uuid: string, portId: string): Promise<void>;
  /** One resource-use sample; INSTANCE_NOT_FOUND when the instance is gone. Takes about a second for a running instance. */
  instanceStats(uuid: string): Promise<InstanceStats>;
  health(): Promise<{ ok: boolean; runtime: boolean }>;
  /**
   * Makes Glance image `imageId` present on the host (PUT /v1/images/{image_id}): the destination
   * of a move checks it can host the instance's image before the source sends anything.
   * IMAGE_NOT_FOUND when the store has no such image.
   */
  fetchImage(imageId: string): Promise<HostImage>;
}

/**
 * `omit_base_layers`: the image holds only what the instance changed, on top of the layers of the
 * image it was created from, which are left out of the upload. Such an image loads only on a host
 * that has that base image (the destination of a move, which made sure of it in its prep).
 */
export interface SnapshotOptions {
  omit_base_layers?: boolean;
}

/**
 * Snapshot calls (part of AgentClient):
 * - snapshotInstance: starts a snapshot into a queued Glance image and returns at once; a repeat
 *   for the same image returns the task under way (or done) and uploads nothing twice.
 * - getSnapshot: null when the agent knows no snapshot into that image.
 */
export interface AgentSnapshotClient {
  snapshotInstance(uuid: string, imageId: string, opts?: SnapshotOptions): Promise<SnapshotTask>;
  getSnapshot(imageId: string): Promise<SnapshotTask | null>;
}

/**
 * The host's image cache beside fetchImage (part of AgentClient; nova's cache_images): whether
 * Glance image `imageId` is in the host's engine (GET /v1/images/{image_id}); IMAGE_NOT_FOUND (404)
 * when the image service does not know it, IMAGE_FETCH_FAILED when it cannot boot instances.
 */
export interface AgentImageClient {
  hostImage(imageId: string): Promise<HostImage>;
}
