import { describeError } from '../../common/errors.js';
import type { KeyedMutex } from '../../common/keyed-mutex.js';
import type { Logger } from '../../common/log.js';
import type { ControlPlane } from './control-plane.js';
import { attachedTo, LOCAL_VOLUMES_KEY, sysmetaOfRow, volumesOnHost, volumesSysmeta, type LocalVolumeSource } from './local-volumes.js';
import { withSysmeta } from './shelve.js';
import type { InstanceStore } from './store.js';

export interface VolumeMirrorDeps {
  host: string;
  store: InstanceStore;
  plane: ControlPlane;
  locks: KeyedMutex;
  volumes?: LocalVolumeSource;
  log: Logger;
}

/**
 * Mirrors the local volumes attached to each instance of this node into its system_metadata
 * (`berth_local_volumes`: names, ids and mount points; removed when none), in the node's record
 * and with the authority, so that a node the instance would move to knows of them without asking
 * this node's agent: a destination's prep_resize refuses the move, an evacuation's destination
 * (this host is down) warns that they stay behind. Run with the power-state sync; an instance with
 * a task in progress waits for the next run.
 */
export class VolumeMirror {
  constructor(private readonly d: VolumeMirrorDeps) {}

  /** The instances whose mirror changed. */
  async sync(): Promise<string[]> {
    if (!this.d.volumes) return [];
    let volumes;
    try {
      volumes = await volumesOnHost(this.d.volumes);
    } catch (err) {
      this.d.log.warn({ err: describeError(err) }, 'local volumes not mirrored: agent unavailable');
      return [];
    }
    const changed: string[] = [];
    for (const row of await this.d.store.listActive(this.d.host)) {
      const want = volumesSysmeta(attachedTo(volumes, row.uuid));
      if ((sysmetaOfRow(row)[LOCAL_VOLUMES_KEY] ?? null) === want || row.task_state !== null) continue;
      await this.d.locks.run(row.uuid, async () => {
        await row.reload();
        if (row.deleted || row.task_state !== null || row.host !== this.d.host) return;
        await this.d.store.update(row, { nova: withSysmeta(row, { [LOCAL_VOLUMES_KEY]: want }) });
        await this.d.plane
          .saveInstance({}, row.uuid, { system_metadata: { [LOCAL_VOLUMES_KEY]: want } })
          .catch((err: unknown) => this.d.log.warn({ instance: row.uuid, err: describeError(err) }, 'could not mirror local volumes to the control plane'));
        changed.push(row.uuid);
      });
    }
    return changed;
  }
}
