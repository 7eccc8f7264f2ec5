/**
 * Worker thread of ArchiveHasher (hash.ts): hashes the served archive of one image with
 * one algorithm, reading each blob from the store once the importer says it is stored.
 * workerData: HashJob. Messages in: { ready: digest }. Message out, once: HashResult.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { hashArchive, type BlobFiles } from './build.js';
import type { HashJob, HashResult } from './hash.js';
import { BlobStore } from '../store/blobs.js';

const port = parentPort!;
const job = workerData as HashJob;
const ready = new Set(job.ready);
const waiting = new Map<string, () => void>();

port.on('message', (m: { ready: string }) => {
  ready.add(m.ready);
  waiting.get(m.ready)?.();
  waiting.delete(m.ready);
});

const store = new BlobStore(job.root);
// Plain blocking reads: this thread has nothing else to do, and the thread pool stays free for
// the importer's downloads, decompression and writes.
const files: BlobFiles = {
  async openFile(digest) {
    if (!ready.has(digest)) await new Promise<void>((resolve) => waiting.set(digest, resolve));
    let fd: number;
    try {
      fd = openSync(store.pathOf(digest), 'r');
    } catch (err) {
      throw (err as NodeJS.ErrnoException).code === 'ENOENT' ? new Error(`blob ${digest} is not in the store`) : err;
    }
    return { read: (buf, length) => readSync(fd, buf, 0, length, null), close: () => closeSync(fd) };
  },
};

hashArchive(files, job.segments, [job.algorithm])
  .then(
    (r) => port.postMessage({ size: r.size, hex: r.hex[0]! } satisfies HashResult),
    (err: unknown) => port.postMessage({ error: err instanceof Error ? err.message : String(err) } satisfies HashResult),
  )
  .finally(() => port.close());
