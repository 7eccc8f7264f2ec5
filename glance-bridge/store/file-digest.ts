import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import type { Worker } from 'node:worker_threads';
import { startWorker } from '../../common/worker.js';

/**
 * The sha256 of a file that was just written, computed off the event loop. An import's event loop
 * receives every layer, feeds the scanner and writes the blobs; hashing 400 MB as it streams was
 * its largest single cost (0.42 s of about 2.2 s, profiled), and it was the import's critical path
 * on two cores. Hashing a finished temp file on a worker thread instead (it is still in the page
 * cache) overlaps with the downloads of the later layers, and the blob is still published only
 * once this digest matches (BlobStore.put).
 */
export interface FileHasher {
  /** Lower-case hex sha256 of the file's bytes. */
  sha256(path: string): Promise<string>;
  close(): Promise<void>;
}

/** Reads the file through the event loop's thread pool and hashes it here: the fallback. */
export async function sha256OfFile(path: string): Promise<string> {
  const handle = await open(path, 'r');
  try {
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(1024 * 1024);
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
    }
    return hash.digest('hex');
  } finally {
    await handle.close();
  }
}

/** What the worker (file-digest-worker.ts) is sent and answers. */
export interface DigestRequest {
  id: number;
  path: string;
}
export type DigestReply = { id: number; hex: string } | { id: number; error: string };

interface Waiter {
  resolve: (hex: string) => void;
  reject: (err: Error) => void;
}

/**
 * One worker thread, started on first use and kept while the process lives; it answers one file
 * at a time, in order. It does not hold the process open while idle. A worker that fails is
 * replaced on the next request; the requests it had are answered on the event loop instead
 * (sha256OfFile), so a broken worker costs time, never an import.
 */
export class WorkerFileHasher implements FileHasher {
  private worker: Worker | null = null;
  private readonly waiting = new Map<number, Waiter>();
  private nextId = 1;

  sha256(path: string): Promise<string> {
    let worker: Worker;
    try {
      worker = this.worker ?? this.start();
    } catch {
      return sha256OfFile(path);
    }
    const id = this.nextId++;
    const answer = new Promise<string>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    if (this.waiting.size === 1) worker.ref();
    worker.postMessage({ id, path } satisfies DigestRequest);
    // A worker gone wrong answers with an error; the file is hashed here instead.
    return answer.catch(() => sha256OfFile(path));
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    this.failAll(new Error('the file hasher was closed'));
    await worker?.terminate();
  }

  private start(): Worker {
    const worker = startWorker(import.meta.url, 'file-digest-worker');
    worker.unref();
    worker.on('message', (m: DigestReply) => {
      const waiter = this.waiting.get(m.id);
      if (!waiter) return;
      this.waiting.delete(m.id);
      if (this.waiting.size === 0) worker.unref();
      if ('hex' in m) waiter.resolve(m.hex);
      else waiter.reject(new Error(m.error));
    });
    const lost = (why: string) => {
      if (this.worker !== worker) return;
      this.worker = null;
      this.failAll(new Error(why));
    };
    worker.on('error', (err) => lost(err.message));
    worker.on('exit', (code) => lost(`the hashing worker exited with code ${code}`));
    this.worker = worker;
    return worker;
  }

  private failAll(err: Error): void {
    const waiters = [...this.waiting.values()];
    this.waiting.clear();
    for (const w of waiters) w.reject(err);
  }
}
