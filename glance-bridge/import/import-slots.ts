import { reserveBytes, type HeldBytes } from '../policy/quotas.js';
import type { ResolvedImage } from '../registry/resolve.js';
import type { ImageRepository } from '../store/images.js';
import { imageError } from '../errors.js';
import type { ImporterOptions } from './importer-options.js';

/**
 * The limits an import is admitted under before anything is fetched: the concurrent-import slots
 * (service-wide and per project) and the owner's byte quota for what the manifest declares.
 */
export class ImportSlots {
  /** Import slots taken, per project that asked (take). */
  private readonly slots = new Map<string, number>();

  constructor(
    private readonly images: ImageRepository,
    private readonly options: ImporterOptions,
  ) {}

  /**
   * Takes one import slot for `project` or refuses with 413, Glance's answer to a quota overrun
   * (its image_count_uploading limit). Checked and taken in one synchronous step, so concurrent
   * requests cannot all pass; returns the release. Imports answered by an existing image take none.
   */
  take(project: string): () => void {
    const { maxConcurrentImports: all, maxConcurrentImportsPerProject: perProject } = this.options;
    const total = [...this.slots.values()].reduce((sum, n) => sum + n, 0);
    const mine = this.slots.get(project) ?? 0;
    if (perProject && mine >= perProject) {
      throw imageError(
        'QUOTA_EXCEEDED',
        `Resource image_count_uploading is over limit of ${perProject} due to current usage ${mine} and delta 1: at most ${perProject} imports of one project run at once ([image_store] max_concurrent_imports_per_project); retry once one has finished`,
        { project, limit: perProject, usage: mine, option: 'max_concurrent_imports_per_project' },
      );
    }
    if (all && total >= all) {
      throw imageError(
        'QUOTA_EXCEEDED',
        `The image service is running its limit of ${all} concurrent imports ([image_store] max_concurrent_imports); retry once one has finished`,
        { limit: all, usage: total, option: 'max_concurrent_imports' },
      );
    }
    this.slots.set(project, mine + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.slots.get(project) ?? 1) - 1;
      if (left > 0) this.slots.set(project, left);
      else this.slots.delete(project);
    };
  }

  /**
   * Reserves, before anything is fetched, the bytes the manifest declares against the owner's byte
   * quota (refused if they do not fit); held until the import settles and its size is recorded.
   */
  async reserveDeclared(owner: string, resolved: ResolvedImage): Promise<HeldBytes> {
    const declared = [resolved.config, ...resolved.layers].reduce((sum, d) => sum + d.size, 0);
    return reserveBytes(this.images, owner, this.options.quotas, declared);
  }
}
