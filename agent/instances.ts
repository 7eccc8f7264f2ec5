import { BerthError } from '../common/errors.js';
import type { Logger } from '../common/log.js';
import { timeStage } from '../common/stages.js';
import type { FlavorSpec, VifSpec, InstanceAction, InstancePowerState, InstanceSpec, InstanceStats, InstanceStatus } from './client/types.js';
import { configDriveFiles, type ConfigDrives } from './config-drive.js';
import { instanceNotFound, invalidState } from './errors.js';
import type { ProjectNetworking } from './network/project-networks.js';
import type { ContainerInfo, ContainerRuntime, ContainerSpec, VolumeBind } from './runtime/types.js';
import { KeyedMutex } from '../common/keyed-mutex.js';
import type { InstanceVolumes } from './volumes/volumes.js';

export const CONSOLE_MAX_BYTES = 1024 * 1024;

export interface InstanceManagerDeps {
  runtime: ContainerRuntime;
  images: { ensureImage(glanceId: string, projectId?: string): Promise<string>; forget(glanceId: string): void };
  networks: ProjectNetworking;
  drives: ConfigDrives;
  log: Logger;
  /** Default grace period, in seconds, between SIGTERM and SIGKILL. */
  stopTimeout: number;
  /** Local volumes attached to instances (agent/volumes/); none when absent. */
  volumes?: InstanceVolumes;
}

/** Engine state → nova power state. An OOM kill or a dead container is a crash, not a stop. */
export function powerStateOf(c: ContainerInfo): InstancePowerState {
  switch (c.state) {
    case 'running':
    case 'restarting':
      return 'running';
    case 'paused':
      return 'paused';
    case 'dead':
      return 'crashed';
    default:
      return c.oomKilled ? 'crashed' : 'stopped';
  }
}

export function toStatus(c: ContainerInfo): InstanceStatus {
  return {
    uuid: c.uuid,
    power_state: powerStateOf(c),
    image_id: c.glanceImageId,
    project_id: c.projectId,
    ip_address: c.ipAddress,
    created_at: c.createdAt,
    started_at: c.startedAt,
    exit_code: c.exitCode,
  };
}

type Step = 'noop' | 'start' | 'stop' | 'restart' | 'pause' | 'unpause' | 'unpause+restart' | 'quit';

/**
 * The signal trigger_crash_dump sends (where a VM gets an NMI): SIGQUIT, the conventional "dump
 * and quit" request. As PID 1 of its namespace the guest's init only sees it if it handles it
 * (Go runtimes dump their goroutines, JVMs print thread dumps, many inits pass it on); otherwise
 * the kernel drops it and nothing changes.
 */
export const CRASH_DUMP_SIGNAL = 'SIGQUIT';

/**
 * What each action does from each power state; a missing entry is INSTANCE_INVALID_STATE.
 * Repeating an action whose target state is already reached is a no-op, so retries are safe.
 * suspend/resume freeze and thaw the processes like pause/unpause: a container has no memory
 * image to save to disk, and the instance reports `paused` while suspended.
 */
const TRANSITIONS: Record<InstanceAction['action'] | 'hard_reboot', Partial<Record<InstancePowerState, Step>>> = {
  start: { stopped: 'start', crashed: 'start', running: 'noop' },
  stop: { running: 'stop', stopped: 'noop', crashed: 'noop' },
  reboot: { running: 'restart', stopped: 'start', crashed: 'start' },
  hard_reboot: { running: 'restart', stopped: 'start', crashed: 'start', paused: 'unpause+restart' },
  pause: { running: 'pause', paused: 'noop' },
  unpause: { paused: 'unpause', running: 'noop' },
  suspend: { running: 'pause', paused: 'noop' },
  resume: { paused: 'unpause', running: 'noop' },
  crash_dump: { running: 'quit' },
};

/** Instance operations over a ContainerRuntime; operations on one uuid run one at a time. */
export class InstanceManager {
  private readonly serial = new KeyedMutex();
  constructor(private readonly deps: InstanceManagerDeps) {}

  /**
   * Idempotent; leaves no container and no config drive behind when it fails. The config drive
   * is complete on disk before the container exists, so the guest reads it from its first boot.
   */
  create(uuid: string, spec: InstanceSpec): Promise<{ instance: InstanceStatus; created: boolean }> {
    return this.serialized(uuid, async () => {
      const { runtime, log } = this.deps;
      const existing = await runtime.inspect(uuid);
      if (existing && existing.state !== 'created') return { instance: toStatus(existing), created: false };
      try {
        const binds = (await this.deps.volumes?.bindsFor(uuid, spec.project_id)) ?? [];
        const volumes = binds.map(({ source, target }) => ({ source, target }));
        const r = await this.createOnce(uuid, spec, existing !== null, volumes).catch(async (err: unknown) => {
          // The engine lost an image this agent had verified: ask the store and the engine again.
          if (!(err instanceof BerthError) || err.code !== 'IMAGE_NOT_FOUND') throw err;
          this.deps.images.forget(spec.image_id);
          return this.createOnce(uuid, spec, existing !== null, volumes);
        });
        await this.deps.volumes?.bound(
          uuid,
          binds.map((b) => b.volume_id),
        );
        log.info({ uuid, request_id: spec.request_id, created: r.created }, 'instance created');
        return { instance: toStatus(r.info), created: r.created && !existing };
      } catch (err) {
        await runtime.remove(uuid, 0).catch((e: unknown) => log.warn({ uuid, err: e }, 'could not remove a partly created instance'));
        await this.deps.drives.remove(uuid).catch((e: unknown) => log.warn({ uuid, err: e }, 'could not remove a config drive'));
        throw err;
      }
    });
  }

  private async createOnce(uuid: string, spec: InstanceSpec, neverStarted: boolean, volumes: VolumeBind[]): Promise<{ info: ContainerInfo; created: boolean }> {
    const { runtime, images, networks, drives } = this.deps;
    const imageId = await timeStage('create', 'image', uuid, () => images.ensureImage(spec.image_id, spec.project_id), this.deps.log);
    const base: ContainerSpec = {
      uuid,
      imageId,
      glanceImageId: spec.image_id,
      projectId: spec.project_id,
      hostname: spec.hostname,
      flavor: spec.flavor,
      ...(volumes.length ? { volumes } : {}),
    };
    // A container an earlier call made but never started keeps its network and drive.
    if (neverStarted) return runtime.createContainer(base);
    if (spec.vifs?.length) {
      // On Neutron's ports: no project network; the VIFs are plugged after the start.
      const mounts = await drives.write(uuid, configDriveFiles(uuid, spec, null, spec.vifs[0]!.dns), spec.key_data);
      return runtime.createContainer({ ...base, vifs: spec.vifs, mounts });
    }
    return networks.withAddress(spec.project_id, spec.fixed_ip, async (n) => {
      const mounts = await drives.write(uuid, configDriveFiles(uuid, spec, n, await drives.nameservers()), spec.key_data);
      return runtime.createContainer({ ...base, network: n.net, mounts });
    });
  }

  async get(uuid: string): Promise<InstanceStatus> {
    const c = await this.deps.runtime.inspect(uuid);
    if (!c) throw instanceNotFound(uuid);
    return toStatus(c);
  }

  async list(): Promise<InstanceStatus[]> {
    return (await this.deps.runtime.list()).map(toStatus);
  }

  /**
   * Succeeds when the instance is already gone. Its volumes are detached, unless `keepVolumes`
   * (a rebuild: the next container of the instance binds them again).
   */
  delete(uuid: string, timeoutSec?: number, keepVolumes = false): Promise<void> {
    return this.serialized(uuid, async () => {
      const removed = await this.deps.runtime.remove(uuid, timeoutSec ?? this.deps.stopTimeout);
      await this.deps.volumes?.released(uuid, keepVolumes);
      if (removed?.projectId) this.deps.networks.release(removed.projectId, removed.ipAddress);
      await this.deps.drives.remove(uuid);
      // The project's last instance here: its network goes too, so networks do not pile up.
      if (removed?.projectId) {
        const projectId = removed.projectId;
        await this.deps.networks
          .pruneProject(projectId)
          .catch((err: unknown) => this.deps.log.warn({ project_id: projectId, err }, "could not remove the project's unused network"));
      }
    });
  }

  act(uuid: string, action: InstanceAction): Promise<InstanceStatus> {
    return this.serialized(uuid, async () => {
      const before = await this.get(uuid);
      const name = action.action === 'reboot' && action.hard ? 'hard_reboot' : action.action;
      const step = TRANSITIONS[name][before.power_state];
      if (!step) throw invalidState(uuid, action.action, before.power_state);
      const timeout = 'timeout' in action && action.timeout !== undefined ? action.timeout : this.deps.stopTimeout;
      await this.runStep(uuid, step, name === 'hard_reboot' ? 0 : timeout);
      // A new start is a new mount namespace: volumes attached to the running container go in again.
      if (step === 'start' || step === 'restart' || step === 'unpause+restart') await this.deps.volumes?.afterStart(uuid);
      return this.get(uuid);
    });
  }

  /**
   * Resize in place: the flavor's limits applied to the container in whatever state it is in (a
   * running guest keeps running). Repeating it with the same flavor changes nothing.
   */
  resize(uuid: string, flavor: FlavorSpec): Promise<InstanceStatus> {
    return this.serialized(uuid, async () => {
      await this.deps.runtime.updateLimits(uuid, flavor);
      this.deps.log.info({ uuid, vcpus: flavor.vcpus, memory_mb: flavor.memory_mb }, 'instance limits updated');
      return this.get(uuid);
    });
  }

  /** Attaches a Neutron VIF (nova's attach_interface); see ContainerRuntime.attachVif. */
  attachVif(uuid: string, vif: VifSpec): Promise<{ port_id: string; ifname: string }> {
    return this.serialized(uuid, async () => {
      const ifname = await this.deps.runtime.attachVif(uuid, vif);
      this.deps.log.info({ uuid, port_id: vif.portId, ifname }, 'interface attached');
      return { port_id: vif.portId, ifname };
    });
  }

  /** Detaches a port's VIF (nova's detach_interface); a port not attached is fine. */
  detachVif(uuid: string, portId: string): Promise<void> {
    return this.serialized(uuid, async () => {
      await this.deps.runtime.detachVif(uuid, portId);
      this.deps.log.info({ uuid, port_id: portId }, 'interface detached');
    });
  }

  /**
   * Commits the instance's filesystem to a new engine image. A running guest is frozen for the
   * commit and thawed afterwards, even when the commit fails; a paused one stays paused.
   */
  commitForSnapshot(uuid: string, onFrozen: () => void): Promise<string> {
    return this.serialized(uuid, async () => {
      const rt = this.deps.runtime;
      const before = await this.get(uuid);
      if (before.power_state !== 'running') {
        onFrozen();
        return rt.commit(uuid);
      }
      await rt.pause(uuid);
      try {
        onFrozen();
        return await rt.commit(uuid);
      } finally {
        await rt.unpause(uuid);
      }
    });
  }

  async stats(uuid: string): Promise<InstanceStats> {
    const c = await this.deps.runtime.inspect(uuid);
    if (!c) throw instanceNotFound(uuid);
    const sample = await this.deps.runtime.stats(uuid);
    const power = powerStateOf(c);
    const started = c.startedAt ? Date.parse(c.startedAt) : NaN;
    const up = power === 'running' || power === 'paused' ? Math.max(0, Math.floor((Date.now() - started) / 1000)) : null;
    return { uuid, power_state: power, ...sample, uptime_seconds: Number.isFinite(up) ? up : null, sampled_at: new Date().toISOString() };
  }

  async console(uuid: string, tail: number): Promise<string> {
    return this.deps.runtime.logs(uuid, { tail, maxBytes: CONSOLE_MAX_BYTES });
  }

  private async runStep(uuid: string, step: Step, timeout: number): Promise<void> {
    const rt = this.deps.runtime;
    switch (step) {
      case 'noop':
        return;
      case 'start':
        return rt.start(uuid);
      case 'stop':
        return rt.stop(uuid, timeout);
      case 'restart':
        return rt.restart(uuid, timeout);
      case 'pause':
        return rt.pause(uuid);
      case 'unpause':
        return rt.unpause(uuid);
      case 'quit':
        return rt.kill(uuid, CRASH_DUMP_SIGNAL);
      case 'unpause+restart':
        await rt.unpause(uuid);
        return rt.restart(uuid, timeout);
    }
  }

  /** Runs `op` while no other operation on the instance does (volume attach and detach). */
  exclusive<T>(uuid: string, op: () => Promise<T>): Promise<T> {
    return this.serialized(uuid, op);
  }

  private serialized<T>(uuid: string, op: () => Promise<T>): Promise<T> {
    return this.serial.run(uuid, op);
  }
}
