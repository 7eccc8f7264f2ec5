import type { AgentClient, InstanceSpec } from '../../agent/client/types.js';
import type { Logger } from '../../common/log.js';
import type { ImageService } from '../../glance-bridge/client/types.js';
import { PowerState, type InstanceRow } from '../db/models.js';
import type { RequestContext } from '../rpc/envelope.js';
import type { ControlPlane } from './control-plane.js';
import type { Lifecycle, Run } from './lifecycle.js';
import { discardImage, rotateBackups, runSnapshot } from './snapshots.js';
import type { InstanceActionName } from './states.js';
import type { InstanceStore } from './store.js';

/** The manager's guarded, recorded action (ComputeManager.powerAction). */
export type Action = (
  ctx: RequestContext,
  uuid: string,
  name: InstanceActionName,
  effect: (row: InstanceRow, run: Run) => Promise<unknown>,
  extra?: { snapshot_image_id?: string },
) => Promise<void>;

export interface ImageActionsDeps {
  store: InstanceStore;
  agent: AgentClient;
  plane: ControlPlane;
  life: Lifecycle;
  /** The image service, for backup rotation; without it backups are not rotated. */
  images?: ImageService;
  log: Logger;
  action: Action;
  /** The instance of this host, or nova's InstanceNotFound. */
  require: (uuid: string) => Promise<InstanceRow>;
}

/** The actions that move an instance onto an image or make one of it: rebuild, snapshot and backup. */
export class ImageActions {
  constructor(private readonly d: ImageActionsDeps) {}

  /**
   * rebuild_instance: the same instance (uuid, name, flavor, network, config drive) on a new
   * image; the old container is removed and a new one started from `imageRef`. A stopped
   * instance is stopped again and stays stopped, as nova's rebuild powers it off after a rebuild
   * from vm_state stopped.
   */
  async rebuild(ctx: RequestContext, uuid: string, imageRef: string): Promise<void> {
    await this.d.action(ctx, uuid, 'rebuild', async (row, run) => {
      const wasStopped = row.vm_state === 'stopped';
      const spec = { ...(JSON.parse(row.spec) as InstanceSpec), image_id: imageRef };
      // Nova's rebuild keeps the instance's volumes: the new container binds them again.
      await this.d.agent.deleteInstance(uuid, { keepVolumes: true });
      await this.d.store.setImage(row, imageRef, spec);
      const status = await this.d.agent.createInstance(uuid, spec);
      await this.d.store.update(row, { launched_at: new Date(), ip_address: status.ip_address });
      if (!wasStopped) return;
      await this.d.agent.instanceAction(uuid, { action: 'stop' });
      run.to = { vm_state: 'stopped', power_state: PowerState.SHUTDOWN };
    });
  }

  /**
   * snapshot_instance / backup_instance: the agent freezes the container only while committing,
   * then streams the image into the Glance image the control plane created. The vm_state is
   * unchanged; task_state goes image_snapshot → image_pending_upload → image_uploading → none.
   */
  async snapshot(ctx: RequestContext, uuid: string, imageId: string, backup?: { type: string; rotation: number }): Promise<void> {
    await this.d.action(
      ctx,
      uuid,
      backup ? 'backup' : 'createImage',
      async (_row, run) => {
        try {
          // nova-api leaves a snapshot at image_snapshot_pending; the compute takes it to
          // image_snapshot (a backup stays at image_backup), as nova's snapshot_instance does.
          if (!backup) await this.d.plane.saveInstance(ctx, uuid, { task_state: 'image_snapshot' }, 'image_snapshot_pending');
          await runSnapshot(this.d.agent, uuid, imageId, (task) => this.d.life.progress(run, task));
        } catch (err) {
          await discardImage(this.d.images, imageId, this.d.log);
          throw err;
        }
      },
      { snapshot_image_id: imageId },
    );
    if (backup && this.d.images) {
      const { project_id: owner } = await this.d.require(uuid);
      const removed = await rotateBackups(this.d.images, { uuid, owner }, backup.type, backup.rotation, this.d.log);
      if (removed.length) this.d.log.info({ instance: uuid, removed }, 'rotated backups');
    }
  }
}
