import type { Logger } from '../common/log.js';
import type { ImageRecords } from './image-records.js';
import type { ContainerRuntime } from './runtime/types.js';

export interface ImageCleanerDeps {
  runtime: ContainerRuntime;
  records: ImageRecords;
  /** Called for each removed image, so remembered Glance → engine mappings are dropped. */
  forgetGlanceId(glanceId: string): void;
  /** An image unused this long (ms) is removed; 0 keeps every image. */
  maxUnusedMs: number;
  log: Logger;
}

/**
 * The image cache's clean-up policy: an image this agent loaded, that no container in the engine
 * uses (any state, any host sharing the engine), and that has not been used for maxUnusedMs, is
 * removed. Images the agent did not load are never touched. The engine's own refusal (a container
 * appeared meanwhile, or the image carries tags of several repositories) keeps the image, and
 * the next pass tries again. A create racing a removal meets IMAGE_NOT_FOUND and fetches again.
 */
export class ImageCleaner {
  private running: Promise<string[]> | null = null;
  constructor(private readonly deps: ImageCleanerDeps) {}

  /** One pass; concurrent calls share it. Resolves to the Glance ids whose images were removed. */
  clean(now = Date.now()): Promise<string[]> {
    this.running ??= this.pass(now).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async pass(now: number): Promise<string[]> {
    const { runtime, records, maxUnusedMs, log } = this.deps;
    const inUse = await runtime.imagesInUse();
    const removed: string[] = [];
    for (const [imageId, record] of records.entries()) {
      if (inUse.has(imageId)) {
        records.used(imageId, now);
        continue;
      }
      if (maxUnusedMs <= 0 || now - record.lastUsedAt < maxUnusedMs) continue;
      await runtime.removeImage(imageId);
      if (await runtime.hasImage(imageId)) {
        log.info({ image: imageId }, 'unused image kept: the container runtime refused to remove it');
        continue;
      }
      for (const g of record.glanceIds) this.deps.forgetGlanceId(g);
      await records.forget(imageId);
      removed.push(...record.glanceIds);
      log.info({ glance_ids: record.glanceIds, unused_seconds: Math.round((now - record.lastUsedAt) / 1000) }, 'removed an unused image');
    }
    await records.save();
    return removed;
  }
}
