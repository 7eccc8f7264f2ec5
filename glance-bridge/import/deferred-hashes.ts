import type { Logger } from '../../common/log.js';
import { describeError } from '../../common/errors.js';
import { digestArchive, type ArchiveDigest } from '../archive/build.js';
import type { BlobStore } from '../store/blobs.js';
import type { ImageRepository } from '../store/images.js';

export interface DeferredHashesDeps {
  images: ImageRepository;
  blobs: Pick<BlobStore, 'openFile'>;
  log: Logger;
}

/**
 * Glance's hashes (`checksum`, the md5, and `os_hash_value`, the sha512) of imported and uploaded
 * images that turned `active` before those hashes were known (`[image_store] active_before_hashes`).
 * An import hands over the hashing it started (ArchiveHasher's workers, still reading the last
 * layers), an upload the hashing of the file it stored; this records the result on the image
 * once it is there. Until then the image is served without `Content-MD5` and shows null
 * hashes, which Glance's schema allows and its clients handle by not
 * verifying: glanceclient's `images.data` (and so nova's image download) checks `os_hash_value`, or
 * `checksum`, or the response's `Content-MD5`, whichever is known, and nothing when none is.
 *
 * What must compare the hashes waits for them: an export to another Glance (`settle`). Hashing
 * a previous process left unfinished is taken up again at start (`recover`). A failed hashing is
 * tried once more from the stored blobs; if that fails too the image keeps null hashes and the
 * error is logged (its blobs are then unreadable, which its downloads will say).
 */
export class DeferredHashes {
  private readonly pending = new Map<string, Promise<void>>();
  /** How to stop the workers of each tracked hashing. */
  private readonly workers = new Map<string, () => Promise<void>>();
  private stopped = false;

  constructor(private readonly deps: DeferredHashesDeps) {}

  /** Images whose hashes are being computed now. */
  get count(): number {
    return this.pending.size;
  }

  /**
   * Records the hashes `digest` settles with on image `imageId`, then runs `done` (which stops
   * the hashing workers). The archive's size was recorded at `active`; a digest of another size
   * means the blobs changed under the hashing and is not recorded.
   */
  track(imageId: string, size: number, digest: Promise<ArchiveDigest>, done: () => Promise<void>): void {
    this.workers.set(imageId, done);
    this.run(imageId, async () => {
      try {
        const got = await digest.catch(async (err: unknown) => {
          if (this.stopped) return null;
          this.deps.log.warn({ image_id: imageId, err: describeError(err) }, 'hashing an active image failed; hashing its stored blobs again');
          return this.hashStored(imageId);
        });
        if (got && !this.stopped) await this.record(imageId, size, got);
      } finally {
        this.workers.delete(imageId);
        await done();
      }
    });
  }

  /**
   * Resolves once image `imageId` has its hashes recorded (or is gone). Waits for the hashing
   * under way; an active image with no hashes and none under way (a previous process stopped
   * first) is hashed now.
   */
  async settle(imageId: string): Promise<void> {
    if (this.stopped) return;
    const running = this.pending.get(imageId);
    if (running) return running;
    const image = await this.deps.images.get(imageId);
    if (!image || image.status !== 'active' || image.checksum !== null || image.size === null) return;
    if (!(await this.deps.images.blobsOf(imageId)) && !(await this.deps.images.fileOf(imageId))) return;
    const size = image.size;
    return this.run(imageId, async () => {
      const got = await this.hashStored(imageId);
      if (got && !this.stopped) await this.record(imageId, size, got);
    });
  }

  /** At start: hashes the active imported and uploaded images a previous process left without them; returns how many. */
  async recover(): Promise<number> {
    const ids = await this.deps.images.activeWithoutHashes();
    // One at a time, in the background: the service answers meanwhile.
    void (async () => {
      for (const id of ids)
        await this.settle(id).catch((err: unknown) => this.deps.log.error({ image_id: id, err: describeError(err) }, 'could not hash an image'));
    })();
    return ids.length;
  }

  /**
   * For shutdown: stops the hashing workers and records nothing more. The images keep null
   * hashes, and the next start hashes them again (recover).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled([...this.workers.values()].map((stop) => stop()));
    await this.drain();
  }

  /** Waits for every hashing under way (shutdown and tests). */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.pending.values()]);
  }

  private run(imageId: string, job: () => Promise<void>): Promise<void> {
    const p = job()
      .catch((err: unknown) => this.deps.log.error({ image_id: imageId, err: describeError(err) }, 'could not record the hashes of an image'))
      .finally(() => this.pending.delete(imageId));
    this.pending.set(imageId, p);
    return p;
  }

  private async hashStored(imageId: string): Promise<ArchiveDigest | null> {
    // An imported image is served as the archive of its blobs, an uploaded one as its file.
    const blobs = await this.deps.images.blobsOf(imageId);
    const file = blobs ? null : await this.deps.images.fileOf(imageId);
    if (!blobs && !file) return null; // deleted meanwhile
    try {
      return await digestArchive(this.deps.blobs, blobs ?? [{ digest: file!.digest, size: file!.size }]);
    } catch (err) {
      if ((await this.deps.images.get(imageId))?.status !== 'active') return null;
      throw err;
    }
  }

  private async record(imageId: string, size: number, got: ArchiveDigest): Promise<void> {
    if (got.size !== size) {
      this.deps.log.error({ image_id: imageId, size, hashed_size: got.size }, 'the hashed archive is not the size recorded; hashes not recorded');
      return;
    }
    const recorded = await this.deps.images.setHashes(imageId, { checksum: got.md5, os_hash_algo: 'sha512', os_hash_value: got.sha512 });
    if (recorded) this.deps.log.debug({ image_id: imageId }, 'image hashes recorded');
  }
}
