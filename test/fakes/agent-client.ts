import type { AgentClient, InstanceAction, InstanceSpec, InstanceStats, InstanceStatus, SnapshotTask } from '../../agent/client/types.js';
import { BerthError } from '../../common/errors.js';

/**
 * An in-memory AgentClient for driver tests: instances keyed by uuid, states changed by actions.
 * `failNext` makes the next call of a method throw, to exercise the driver's error paths.
 */
export class FakeAgentClient implements AgentClient {
  readonly instances = new Map<string, InstanceStatus & { spec: InstanceSpec }>();
  readonly calls: string[] = [];
  createDelayMs = 0;
  private failures = new Map<string, BerthError>();
  knownImages = new Set<string>();

  failNext(method: keyof AgentClient, err: BerthError): void { this.failures.set(method, err); }

  private enter(method: string): void {
    this.calls.push(method);
    const f = this.failures.get(method);
    if (f) { this.failures.delete(method); throw f; }
  }

  private get(uuid: string) {
    const i = this.instances.get(uuid);
    if (!i) throw new BerthError('INSTANCE_NOT_FOUND', `instance ${uuid} not found`, { status: 404 });
    return i;
  }

  private view(i: InstanceStatus & { spec: InstanceSpec }): InstanceStatus {
    const { spec: _spec, ...status } = i;
    return { ...status };
  }

  async createInstance(uuid: string, spec: InstanceSpec): Promise<InstanceStatus> {
    this.enter('createInstance');
    if (this.createDelayMs) await new Promise((r) => setTimeout(r, this.createDelayMs));
    if (this.knownImages.size && !this.knownImages.has(spec.image_id)) {
      throw new BerthError('IMAGE_NOT_FOUND', `image ${spec.image_id} not found in the image store`, { status: 404 });
    }
    const existing = this.instances.get(uuid);
    if (existing) return this.view(existing);
    const now = new Date().toISOString();
    const i = { uuid, power_state: 'running' as const, image_id: spec.image_id, project_id: spec.project_id, ip_address: spec.fixed_ip ?? `172.30.0.${this.instances.size + 2}`, created_at: now, started_at: now, exit_code: null, spec };
    this.instances.set(uuid, i);
    return this.view(i);
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

  async deleteInstance(uuid: string): Promise<void> {
    this.enter('deleteInstance');
    this.instances.delete(uuid);
  }

  async instanceAction(uuid: string, action: InstanceAction): Promise<InstanceStatus> {
    this.enter('instanceAction');
    const i = this.get(uuid);
    const next: Record<InstanceAction['action'], InstanceStatus['power_state']> = {
      start: 'running', stop: 'stopped', reboot: 'running', pause: 'paused', unpause: 'running', suspend: 'paused', resume: 'running',
    };
    i.power_state = next[action.action];
    return this.view(i);
  }

  async instanceStats(uuid: string): Promise<InstanceStats> {
    this.enter('instanceStats');
    const i = this.get(uuid);
    const running = i.power_state === 'running';
    return {
      uuid, power_state: i.power_state, cpu: { total_usage_ns: 1_000_000, percent: running ? 1 : null, online_cpus: 1 },
      memory: { usage_bytes: 1 << 20, limit_bytes: i.spec.flavor.memory_mb * 1024 * 1024 },
      network: { rx_bytes: 0, tx_bytes: 0, rx_packets: 0, tx_packets: 0 }, pids: running ? 1 : 0,
      uptime_seconds: running ? 1 : null, sampled_at: new Date().toISOString(),
    };
  }

  async consoleLog(uuid: string, tailLines?: number): Promise<string> {
    this.enter('consoleLog');
    this.get(uuid);
    const lines = ['berth-guest: booted', 'line 2', 'line 3'];
    return (tailLines === undefined ? lines : lines.slice(-tailLines)).join('\n');
  }

  readonly snapshots = new Map<string, SnapshotTask>();
  /** Snapshots finish after this many getSnapshot polls (0: at once); `snapshotFails` makes them fail. */
  snapshotPolls = 1;
  snapshotFails: { code: string; message: string } | null = null;
  private polls = new Map<string, number>();

  async snapshotInstance(uuid: string, imageId: string): Promise<SnapshotTask> {
    this.enter('snapshotInstance');
    this.get(uuid);
    const existing = this.snapshots.get(imageId);
    if (existing) return { ...existing };
    const now = new Date().toISOString();
    const task: SnapshotTask = { image_id: imageId, instance_uuid: uuid, state: 'freezing', bytes_uploaded: 0, error: null, created_at: now, updated_at: now };
    this.snapshots.set(imageId, task);
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
