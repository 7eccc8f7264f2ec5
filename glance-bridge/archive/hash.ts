import type { Worker } from 'node:worker_threads';
import { startWorker } from '../../common/worker.js';
import { archiveSegments, type ArchiveDigest, type ArchiveSegment } from './build.js';
import { imageError } from '../errors.js';
import type { ImageBlobs } from '../store/types.js';

/** What a hashing worker is given (hash-worker.ts). */
export interface HashJob {
  root: string;
  segments: ArchiveSegment[];
  algorithm: string;
  ready: string[];
}
export type HashResult = { size: number; hex: string } | { error: string };

/**
 * The served archive's size, md5 (Glance's `checksum`) and sha512 (`os_hash_value`), computed
 * while the import is still fetching: one worker thread per hash, each walking the archive in
 * order and reading a blob as soon as `ready` says it is stored. The hashing of the first layers
 * overlaps the download of the later ones, and the two hashes run side by side, off the event
 * loop that is receiving the layers. Same bytes as digestArchive (build.ts).
 */
export class ArchiveHasher {
  private readonly workers: Worker[];
  private readonly results: Promise<HashResult>[];

  /** `blobs`: an imported image's (hashed as its served archive), or the segments to hash (an uploaded image's file). `ready`: digests of blobs already stored. */
  constructor(root: string, blobs: ImageBlobs | ArchiveSegment[], ready: Iterable<string>) {
    const job = { root, segments: Array.isArray(blobs) ? blobs : archiveSegments(blobs), ready: [...ready] };
    this.workers = ['md5', 'sha512'].map((algorithm) => startWorker(import.meta.url, 'hash-worker', { workerData: { ...job, algorithm } satisfies HashJob }));
    this.results = this.workers.map(
      (w) =>
        new Promise<HashResult>((resolve) => {
          w.once('message', (m: HashResult) => resolve(m));
          w.once('error', (err) => resolve({ error: err.message }));
          w.once('exit', (code) => resolve({ error: `the hashing worker exited with code ${code}` }));
        }),
    );
  }

  /** Blob `digest` is stored whole and verified. */
  ready(digest: string): void {
    for (const w of this.workers) w.postMessage({ ready: digest });
  }

  /**
   * Both hashes; IMAGE_HASH_FAILED as soon as either worker fails, without waiting for the other
   * (which may be waiting for blobs that will never be said ready).
   */
  async digest(): Promise<ArchiveDigest> {
    const checked = this.results.map(async (result) => {
      const r = await result;
      if ('error' in r) throw imageError('IMAGE_HASH_FAILED', `could not hash the image archive: ${r.error}`);
      return r;
    });
    const [md5, sha512] = (await Promise.all(checked)) as [{ size: number; hex: string }, { size: number; hex: string }];
    return { size: md5.size, md5: md5.hex, sha512: sha512.hex };
  }

  /** Stops the workers (after digest, or when the import failed). */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
