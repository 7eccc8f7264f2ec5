import type { AgentClient } from '../../agent/client/types.js';
import type { Logger } from '../../common/log.js';
import type { ImageService } from '../../glance-bridge/client/types.js';
import type { InstanceRow, MigrationRow } from '../db/models.js';
import { novaError } from '../rpc/failure.js';
import { movedRecordOf, type Carried } from './migrate-carry.js';
import { runSnapshot } from './snapshots.js';
import type { InstanceStore } from './store.js';

export interface SendDeps {
  agent: AgentClient;
  images?: ImageService;
  store: InstanceStore;
  log: Logger;
  pollMs?: number;
}

/** The guest stopped, its commit uploaded without the base image's layers; the guest started again when that fails. */
export async function sendFilesystem(d: SendDeps, row: InstanceRow, m: MigrationRow, cleanShutdown: boolean): Promise<Carried> {
  const { agent, images } = d;
  if (!images) throw novaError('MigrationError', 400, 'Migration error: this Berth node has no image service to move an instance through.');
  const status = await agent.getInstance(row.uuid);
  const wasRunning = status?.power_state === 'running';
  if (wasRunning) await agent.instanceAction(row.uuid, cleanShutdown ? { action: 'stop' } : { action: 'stop', timeout: 0 });
  let imageId: string | null = null;
  try {
    const image = await images.createImage({
      name: `${row.display_name}-${m.migration_type}-${m.uuid.slice(0, 8)}`,
      container_format: 'docker',
      disk_format: 'raw',
      visibility: 'private',
      owner: row.project_id,
      instance_uuid: row.uuid,
      migration_uuid: m.uuid,
    });
    imageId = image.id;
    const task = await runSnapshot(agent, row.uuid, image.id, async () => undefined, {
      snapshot: { omit_base_layers: true },
      ...(d.pollMs ? { pollMs: d.pollMs } : {}),
    });
    await d.store.setTransfer(m, image.id, task.bytes_uploaded);
    d.log.info(
      { instance: row.uuid, migration: m.uuid, image: image.id, bytes: task.bytes_uploaded, omitted_bytes: task.omitted_bytes ?? null },
      "instance's filesystem sent through the image store",
    );
    return { berth_move: { image_id: image.id, bytes: task.bytes_uploaded, omitted_bytes: task.omitted_bytes ?? null, record: movedRecordOf(row) } };
  } catch (err) {
    if (imageId) await images.deleteImage(imageId).catch(() => undefined);
    if (wasRunning) await agent.instanceAction(row.uuid, { action: 'start' }).catch(() => undefined);
    throw err;
  }
}
