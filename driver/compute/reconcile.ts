import type { AgentClient, InstanceStatus } from '../../agent/client/types.js';
import { describeError } from '../../common/errors.js';
import type { KeyedMutex } from '../../common/keyed-mutex.js';
import type { Logger } from '../../common/log.js';
import type { ControlPlane } from './control-plane.js';
import type { Lifecycle } from './lifecycle.js';
import type { InstanceStore } from './store.js';
import type { LocalVolumeSource } from './local-volumes.js';
import { VolumeMirror } from './volume-mirror.js';

export interface ReconcilerDeps {
  host: string;
  store: InstanceStore;
  agent: AgentClient;
  plane: ControlPlane;
  /** The manager's per-instance lock: a correction never overlaps an operation on the instance. */
  locks: KeyedMutex;
  life: Lifecycle;
  /** The agent's local volumes, mirrored into each instance's system_metadata with the sync (volume-mirror.ts). */
  volumes?: LocalVolumeSource;
  log: Logger;
}

/** Brings the records back in line with what the agent runs and what the control plane still has. */
export class Reconciler {
  private readonly mirror: VolumeMirror;
  constructor(private readonly d: ReconcilerDeps) {
    this.mirror = new VolumeMirror(d);
  }

  /**
   * The power-state sync (nova's _sync_power_states): compares each record with what the agent
   * reports and corrects drift (a container that stopped, died or vanished) with an
   * instance.update notification. Instances with a task in progress are left alone.
   */
  async syncPowerStates(): Promise<{ corrected: number; unknown: string[] }> {
    let reported: InstanceStatus[];
    try {
      reported = await this.d.agent.listInstances();
    } catch (err) {
      this.d.log.warn({ err: describeError(err) }, 'power-state sync skipped: agent unavailable');
      return { corrected: 0, unknown: [] };
    }
    const byUuid = new Map(reported.map((r) => [r.uuid, r]));
    let corrected = 0;
    const known = new Set<string>();
    for (const row of await this.d.store.listActive(this.d.host)) {
      known.add(row.uuid);
      // A shelved and offloaded instance has no container to compare.
      if (row.task_state !== null || row.vm_state === 'building' || row.vm_state === 'shelved_offloaded') continue;
      await this.d.locks.run(row.uuid, async () => {
        await row.reload();
        if (row.task_state !== null || row.deleted) return;
        if (await this.d.life.drift(row, byUuid.get(row.uuid) ?? null)) corrected++;
      });
    }
    const unknown = reported.map((r) => r.uuid).filter((u) => !known.has(u));
    if (unknown.length) this.d.log.warn({ instances: unknown }, 'the agent runs Berth containers this node has no record of');
    await this.mirror.sync();
    return { corrected, unknown };
  }

  /**
   * Removes the containers of instances the control plane deleted without this node (nova deletes
   * a down node's servers by itself), as nova-compute's reaping of running deleted instances does.
   */
  async reapDeletedElsewhere(): Promise<string[]> {
    const rows = (await this.d.store.listActive(this.d.host)).filter((r) => r.vm_state !== 'building');
    const missing = await this.d.plane.missingInstances(rows.map((r) => r.uuid));
    for (const uuid of missing) {
      await this.d.locks.run(uuid, async () => {
        const row = await this.d.store.get(uuid);
        if (!row || row.deleted) return;
        await this.d.agent.deleteInstance(uuid);
        await this.d.life.removed(row, 'deleted_elsewhere');
      });
    }
    return missing;
  }
}
