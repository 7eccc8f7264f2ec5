import type {
  AgentClient,
  FlavorSpec,
  HostImage,
  SnapshotOptions,
  InstanceAction,
  InstanceSpec,
  InstanceStats,
  InstanceStatus,
  SerialConsoleGrant,
  SerialConsoleLease,
  SnapshotTask,
  VifSpec,
} from '../../agent/client/types.js';
import { BerthError } from '../../common/errors.js';
import { agentError } from '../../agent/client/errors.js';

type PowerState = InstanceStatus['power_state'];

/**
 * The agent's state rules (agent/instances.ts TRANSITIONS): the state each action leads to from
 * each power state; a missing entry is INSTANCE_INVALID_STATE (409). Repeating an action whose
 * target state is reached is a no-op. test/conformance/agent-client.ts pins both to the agent.
 */
const TRANSITIONS: Record<InstanceAction['action'] | 'hard_reboot', Partial<Record<PowerState, PowerState>>> = {
  start: { stopped: 'running', crashed: 'running', running: 'running' },
  stop: { running: 'stopped', stopped: 'stopped', crashed: 'crashed' },
  reboot: { running: 'running', stopped: 'running', crashed: 'running' },
  hard_reboot: { running: 'running', stopped: 'running', crashed: 'running', paused: 'running' },
  pause: { running: 'paused', paused: 'paused' },
  unpause: { paused: 'running', running: 'running' },
  suspend: { running: 'paused', paused: 'paused' },
  resume: { paused: 'running', running: 'running' },
  crash_dump: { running: 'running' },
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const invalidInput = (message: string, field: string): BerthError => agentError('INVALID_INPUT', message, { field });

/**
 * An in-memory AgentClient for driver tests: instances keyed by uuid, moved by actions under the
 * agent's state rules, with the agent's error codes and statuses.
 * `failNext` makes the next call of a method throw, to exercise the driver's error paths.
 */
export class FakeAgentClient implements AgentClient {
  readonly instances = new Map<string, InstanceStatus & { spec: InstanceSpec }>();
  readonly calls: string[] = [];
  createDelayMs = 0;
  private failures = new Map<string, BerthError>();
  knownImages = new Set<string>();

  failNext(method: keyof AgentClient, err: BerthError): void {
    this.failures.set(method, err);
  }

  private enter(method: string): void {
    this.calls.push(method);
    const f = this.failures.get(method);
    if (f) {
      this.failures.delete(method);
      throw f;
    }
  }

  private get(uuid: string) {
    const i = this.instances.get(uuid);
    if (!i) throw agentError('INSTANCE_NOT_FOUND', `instance ${uuid} not found`, { uuid });
    return i;
  }

  private static requireUuid(uuid: string): void {
    if (!UUID.test(uuid)) throw invalidInput('uuid must be a lowercase UUID with dashes', 'uuid');
  }

  private view(i: InstanceStatus & { spec: InstanceSpec }): InstanceStatus {
    const { spec: _spec, ...status } = i;
    return { ...status };
  }

  async createInstance(uuid: string, spec: InstanceSpec): Promise<InstanceStatus> {
    this.enter('createInstance');
    FakeAgentClient.requireUuid(uuid);
    if (this.createDelayMs) await new Promise((r) => setTimeout(r, this.createDelayMs));
    if (this.knownImages.size && !this.knownImages.has(spec.image_id)) {
      throw agentError('IMAGE_NOT_FOUND', `image ${spec.image_id} not found in the image store`);
    }
    const existing = this.instances.get(uuid);
    if (existing) return this.view(existing);
    this.cachedImages.add(spec.image_id);
    const now = new Date().toISOString();
    const i = {
      uuid,
      power_state: 'running' as const,
      image_id: spec.image_id,
      project_id: spec.project_id,
      // On Neutron's VIFs the address is the first VIF's, as the agent reports it.
      ip_address: spec.vifs?.flatMap((v) => v.addresses)[0]?.address ?? spec.fixed_ip ?? `172.30.0.${this.instances.size + 2}`,
      created_at: now,
      started_at: now,
      exit_code: null,
      spec,
    };
    this.instances.set(uuid, i);
    return this.view(i);
  }

  /** Glance images present on the fake host: fetched, or booted from. */
  readonly cachedImages = new Set<string>();

  private image(imageId: string): HostImage {
    if (this.knownImages.size && !this.knownImages.has(imageId)) {
      throw agentError('IMAGE_NOT_FOUND', `image ${imageId} not found in the image service`, { image_id: imageId });
    }
    const present = this.cachedImages.has(imageId);
    return { image_id: imageId, present, docker_image_id: `sha256:${'0'.repeat(64)}`, size_bytes: present ? 1024 : null, loaded_by_agent: present };
  }

  async hostImage(imageId: string): Promise<HostImage> {
    this.enter('hostImage');
    return this.image(imageId);
  }

  /** Images fetchImage made present, in order. */
  readonly fetched: string[] = [];

  async fetchImage(imageId: string): Promise<HostImage> {
    this.enter('fetchImage');
    this.image(imageId);
    this.fetched.push(imageId);
    this.cachedImages.add(imageId);
    return this.image(imageId);
  }

  async getInstance(uuid: string): Promise<InstanceStatus | null> {
    this.enter('getInstance');
    const i = this.instances.get(uuid);
    return i ? this.view(i) : null;
  }

  async listInstances(): Promise<InstanceStatus[]> {
    this.enter('listInstances');
    return [...this.instances.values()].map((i) => this.view(i));
  }

  /** Each deleteInstance and whether it kept the instance's volumes (a rebuild's). */
  readonly deletes: Array<{ uuid: string; keepVolumes: boolean }> = [];

  async deleteInstance(uuid: string, opts: { timeout?: number; keepVolumes?: boolean } = {}): Promise<void> {
    this.enter('deleteInstance');
    this.deletes.push({ uuid, keepVolumes: opts.keepVolumes === true });
    this.instances.delete(uuid);
    this.attachedVifs.delete(uuid);
  }

  /** The VIFs attached at run time, with their guest interfaces, by instance. */
  readonly attachedVifs = new Map<string, Array<{ ifname: string; vif: VifSpec }>>();

  async attachVif(uuid: string, vif: VifSpec): Promise<{ port_id: string; ifname: string }> {
    this.enter('attachVif');
    FakeAgentClient.requireUuid(uuid);
    const i = this.get(uuid);
    const list = this.attachedVifs.get(uuid) ?? (i.spec.vifs ?? []).map((v, n) => ({ ifname: `eth${n}`, vif: v }));
    const had = list.find((p) => p.vif.portId === vif.portId);
    if (had) return { port_id: vif.portId, ifname: had.ifname };
    const taken = new Set(list.map((p) => p.ifname));
    if (!i.spec.vifs?.length) taken.add('eth0');
    let n = 0;
    while (taken.has(`eth${n}`)) n++;
    this.attachedVifs.set(uuid, [...list, { ifname: `eth${n}`, vif }]);
    return { port_id: vif.portId, ifname: `eth${n}` };
  }

  async detachVif(uuid: string, portId: string): Promise<void> {
    this.enter('detachVif');
    FakeAgentClient.requireUuid(uuid);
    const i = this.instances.get(uuid);
    if (!i) return;
    const list = this.attachedVifs.get(uuid) ?? (i.spec.vifs ?? []).map((v, n) => ({ ifname: `eth${n}`, vif: v }));
    this.attachedVifs.set(
      uuid,
      list.filter((p) => p.vif.portId !== portId),
    );
  }

  async instanceAction(uuid: string, action: InstanceAction): Promise<InstanceStatus> {
    this.enter('instanceAction');
    FakeAgentClient.requireUuid(uuid);
    if (!Object.hasOwn(TRANSITIONS, action.action) || (action as { action: string }).action === 'hard_reboot') {
      throw invalidInput('action must be one of start, stop, reboot, pause, unpause, suspend, resume, crash_dump', 'action');
    }
    const i = this.get(uuid);
    const name = action.action === 'reboot' && action.hard ? 'hard_reboot' : action.action;
    const next = TRANSITIONS[name][i.power_state];
    if (!next) {
      throw agentError('INSTANCE_INVALID_STATE', `cannot ${action.action} instance ${uuid} while it is ${i.power_state}`, {
        uuid,
        operation: action.action,
        state: i.power_state,
      });
    }
    const starts = next === 'running' && (i.power_state !== 'running' || action.action === 'reboot') && action.action !== 'crash_dump';
    if (starts && i.power_state !== 'paused') i.started_at = new Date().toISOString();
    i.power_state = next;
    return this.view(i);
  }

  async instanceStats(uuid: string): Promise<InstanceStats> {
    this.enter('instanceStats');
    const i = this.get(uuid);
    const running = i.power_state === 'running';
    const up = running || i.power_state === 'paused';
    return {
      uuid,
      power_state: i.power_state,
      cpu: { total_usage_ns: 1_000_000, percent: running ? 1 : null, online_cpus: 1 },
      memory: { usage_bytes: 1 << 20, limit_bytes: i.spec.flavor.memory_mb * 1024 * 1024 },
      network: { rx_bytes: 0, tx_bytes: 0, rx_packets: 0, tx_packets: 0 },
      pids: running ? 1 : 0,
      uptime_seconds: up ? 1 : null,
      sampled_at: new Date().toISOString(),
    };
  }

  /** The agent's in-place resize: limits change, the power state does not; the flavor is validated as the agent does. */
  async resizeInstance(uuid: string, flavor: FlavorSpec): Promise<InstanceStatus> {
    this.enter('resizeInstance');
    FakeAgentClient.requireUuid(uuid);
    if (!Number.isInteger(flavor.vcpus) || flavor.vcpus < 1) throw invalidInput('flavor.vcpus must be an integer from 1 to 1024', 'flavor.vcpus');
    if (!Number.isInteger(flavor.memory_mb) || flavor.memory_mb < 6)
      throw invalidInput('flavor.memory_mb must be an integer from 6 to 16777216', 'flavor.memory_mb');
    const i = this.get(uuid);
    const quota = (f: FlavorSpec) => f.extra_specs['quota:cpu_quota'] !== undefined || f.extra_specs['quota:cpu_period'] !== undefined;
    if (quota(flavor) !== quota(i.spec.flavor)) {
      throw invalidInput(`instance ${uuid} cannot move between a vCPU bound and a quota:cpu_quota/cpu_period bound in place`, 'flavor');
    }
    i.spec = { ...i.spec, flavor };
    return this.view(i);
  }

  async consoleLog(uuid: string, tailLines?: number): Promise<string> {
    this.enter('consoleLog');
    this.get(uuid);
    const lines = ['berth-guest: booted', 'line 2', 'line 3'];
    return (tailLines === undefined ? lines : tailLines === 0 ? [] : lines.slice(-tailLines)).join('\n');
  }

  /** Open console endpoints by instance, as the agent's: one port each, from 10000. */
  readonly consolePorts = new Map<string, number>();

  async openSerialConsole(uuid: string, kind: SerialConsoleLease = 'token'): Promise<SerialConsoleGrant> {
    this.enter('openSerialConsole');
    const i = this.get(uuid);
    if (i.power_state !== 'running')
      throw agentError('INSTANCE_INVALID_STATE', `cannot open the console of instance ${uuid} while it is ${i.power_state}`, {
        uuid,
        operation: 'open the console of',
        state: i.power_state,
      });
    const port = this.consolePorts.get(uuid) ?? 10000 + this.consolePorts.size;
    this.consolePorts.set(uuid, port);
    return {
      host: '127.0.0.1',
      port,
      path: kind === 'token' ? `/berth-console?token=fake-${uuid}` : null,
      expires_at: new Date(Date.now() + 600_000).toISOString(),
    };
  }

  async serialConsolePort(uuid: string): Promise<number | null> {
    this.enter('serialConsolePort');
    FakeAgentClient.requireUuid(uuid);
    return this.consolePorts.get(uuid) ?? null;
  }

  readonly snapshots = new Map<string, SnapshotTask>();
  /** Snapshots finish after this many getSnapshot polls (0: at once); `snapshotFails` makes them fail. */
  snapshotPolls = 1;
  snapshotFails: { code: string; message: string } | null = null;
  private polls = new Map<string, number>();

  /** The options each snapshot was started with, by image. */
  readonly snapshotOptions = new Map<string, SnapshotOptions>();

  async snapshotInstance(uuid: string, imageId: string, opts: SnapshotOptions = {}): Promise<SnapshotTask> {
    this.enter('snapshotInstance');
    const existing = this.snapshots.get(imageId);
    if (existing && existing.instance_uuid !== uuid) throw invalidInput(`image ${imageId} already receives a snapshot of another instance`, 'image_id');
    if (existing && existing.state !== 'failed') return { ...existing };
    this.get(uuid);
    const now = new Date().toISOString();
    const task: SnapshotTask = { image_id: imageId, instance_uuid: uuid, state: 'freezing', bytes_uploaded: 0, error: null, created_at: now, updated_at: now };
    if (opts.omit_base_layers) task.omitted_bytes = 0;
    this.snapshots.set(imageId, task);
    this.snapshotOptions.set(imageId, opts);
    this.polls.set(imageId, 0);
    return { ...task };
  }

  async getSnapshot(imageId: string): Promise<SnapshotTask | null> {
    this.enter('getSnapshot');
    const task = this.snapshots.get(imageId);
    if (!task) return null;
    const n = (this.polls.get(imageId) ?? 0) + 1;
    this.polls.set(imageId, n);
    if (task.state !== 'active' && task.state !== 'failed') {
      if (n >= this.snapshotPolls) {
        if (this.snapshotFails) Object.assign(task, { state: 'failed', error: this.snapshotFails });
        else Object.assign(task, { state: 'active', bytes_uploaded: 1024 });
      } else task.state = 'uploading';
    }
    return { ...task };
  }

  async health(): Promise<{ ok: boolean; runtime: boolean }> {
    return { ok: true, runtime: true };
  }
}
