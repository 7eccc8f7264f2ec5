import type { AgentClient, SnapshotOptions, SnapshotTask } from '../../agent/client/types.js';
import { BerthError, describeError } from '../../common/errors.js';
import { driverError } from '../errors.js';
import type { Logger } from '../../common/log.js';
import type { ImageService } from '../../glance-bridge/client/types.js';

/** The first wait before polling a snapshot, doubled after each poll up to the longest (pollMs, 200 ms by default). */
export const FIRST_POLL_MS = 25;

/**
 * The waits between polls of a snapshot: FIRST_POLL_MS, doubling, capped at `longest`. A fixed
 * 500 ms poll added a quarter of a second to every shelve on average (the snapshot ends at any
 * moment between two polls); a poll is a read of the agent's memory on the same host, so a long
 * upload costs it five cheap requests a second at the 200 ms default.
 */
export function* pollWaits(longest: number): Generator<number, never> {
  let wait = Math.min(FIRST_POLL_MS, longest);
  for (;;) {
    yield wait;
    wait = Math.min(wait * 2, longest);
  }
}

/**
 * Waits for the agent's snapshot into `imageId` to finish, reporting nova's task states on the
 * way (image_snapshot while frozen and committing, image_uploading while the export streams).
 */
export async function runSnapshot(
  agent: AgentClient,
  uuid: string,
  imageId: string,
  onTask: (task: 'image_pending_upload' | 'image_uploading') => Promise<void>,
  opts: { pollMs?: number; timeoutMs?: number; snapshot?: SnapshotOptions; sleep?: (ms: number) => Promise<void> } = {},
): Promise<SnapshotTask> {
  let task = await agent.snapshotInstance(uuid, imageId, opts.snapshot);
  const deadline = Date.now() + (opts.timeoutMs ?? 30 * 60_000);
  const waits = pollWaits(opts.pollMs ?? 200);
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let reported: string | null = null;
  while (task.state !== 'active' && task.state !== 'failed') {
    const next = task.state === 'uploading' ? 'image_uploading' : 'image_pending_upload';
    if (task.state !== 'freezing' && reported !== next) {
      reported = next;
      await onTask(next);
    }
    if (Date.now() > deadline) throw driverError('SNAPSHOT_TIMEOUT', `snapshot of ${uuid} into image ${imageId} did not finish in time`);
    await sleep(waits.next().value);
    const polled = await agent.getSnapshot(imageId);
    if (!polled) throw driverError('SNAPSHOT_LOST', `the agent lost the snapshot into image ${imageId} (restarted?)`);
    task = polled;
  }
  if (task.state === 'failed') {
    const message = `snapshot into image ${imageId} failed: ${task.error?.message ?? 'unknown error'}`;
    // The agent's own code, when it gave one, is what the fault is recorded by (a peer's code, as errorFromBody keeps it).
    throw task.error?.code ? new BerthError(task.error.code, message, { status: 500 }) : driverError('SNAPSHOT_FAILED', message);
  }
  return task;
}

/**
 * backup_instance's rotation (nova's _rotate_backups): keep the newest `rotation` backups of this
 * instance and backup type, delete the older ones. Images carry nova's backup properties, but any
 * tenant can write those on its own images: only images owned by the instance's project count, so
 * a crafted image of another project is neither deleted by this rotation nor pushes out a real
 * backup. `owner` is the instance's project_id (nova lists with the owner's context).
 */
export async function rotateBackups(
  images: ImageService,
  instance: { uuid: string; owner: string },
  backupType: string,
  rotation: number,
  log: Logger,
): Promise<string[]> {
  const { uuid, owner } = instance;
  const backups = (await images.listImages({ owner, instance_uuid: uuid, image_type: 'backup', backup_type: backupType }))
    .filter((i) => i.status === 'active' && i.owner === owner && i.instance_uuid === uuid && i.backup_type === backupType && i.image_type === 'backup')
    .sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
  const excess = backups.slice(Math.max(0, rotation));
  for (const img of excess) {
    await images.deleteImage(img.id).catch((err) => log.warn({ image: img.id, err: describeError(err) }, 'could not delete a rotated backup'));
  }
  return excess.map((i) => i.id);
}

/**
 * nova's delete_image_on_error: a snapshot that failed leaves no queued image behind, so the
 * caller waiting for it sees the failure instead of waiting forever.
 */
export async function discardImage(images: ImageService | undefined, imageId: string, log: Logger): Promise<void> {
  if (!images) return;
  try {
    const image = await images.getImage(imageId);
    if (image && image.status !== 'active') await images.deleteImage(imageId);
  } catch (err) {
    log.warn({ image_id: imageId, err: describeError(err) }, 'could not remove the image of a failed snapshot');
  }
}
