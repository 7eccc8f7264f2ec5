import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { imageError } from '../errors.js';

/** Sees every chunk before it is written; may apply back-pressure. */
export type ChunkObserver = (chunk: Buffer) => void | Promise<void>;

/**
 * Counts what flows through, and stops the flow once it passes the size limit; hashes it too,
 * unless `hash` is null (the caller hashes the written file instead: file-digest.ts).
 */
export class DigestingCounter extends Transform {
  readonly hash: Hash | null;
  bytes = 0;
  constructor(
    hashing: boolean,
    private readonly limit: number,
    private readonly onBytes?: (n: number) => void,
    private readonly observe?: ChunkObserver,
  ) {
    super();
    this.hash = hashing ? createHash('sha256') : null;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      done(imageError('BLOB_TOO_LARGE', `blob larger than ${this.limit} bytes`, { limit: this.limit }));
      return;
    }
    this.hash?.update(chunk);
    this.onBytes?.(chunk.length);
    const observed = this.observe?.(chunk);
    if (observed)
      observed.then(
        () => done(null, chunk),
        (err: unknown) => done(err as Error),
      );
    else done(null, chunk);
  }
}

// Bytes gathered before one writev: a download arrives in 64 KiB chunks, and writing each as it
// comes costs a thread-pool round trip apiece (7% of a 400 MB import's time, measured).
const WRITE_BATCH = 1024 * 1024;

// Bytes written before the file's data is flushed in the background, while the rest downloads:
// otherwise the kernel holds it all dirty until the fsync that publishes the blob, which then
// writes the whole blob to disk at once (about 0.1 s per 50 MB here) on the import's path.
const SYNC_EVERY = 8 * 1024 * 1024;

/**
 * A new file (created exclusively) written with one writev per WRITE_BATCH bytes, copying
 * nothing, and flushed to disk every SYNC_EVERY bytes without waiting (one flush at a time; a
 * failed one fails the file when it is finished). Finishing it fsyncs it: once the stream has
 * finished, its bytes are on disk.
 */
class TempFile extends Writable {
  private handle: FileHandle | null = null;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private unsynced = 0;
  private syncing: Promise<void> | null = null;
  private syncError: Error | null = null;

  constructor(private readonly path: string) {
    super({ highWaterMark: 2 * WRITE_BATCH });
  }

  override _construct(callback: (err?: Error | null) => void): void {
    open(this.path, 'wx', 0o600).then((h) => {
      this.handle = h;
      callback();
    }, callback);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < WRITE_BATCH) callback();
    else this.flushPending().then(() => callback(), callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.flushPending()
      .then(async () => {
        await this.syncing;
        if (this.syncError) throw this.syncError;
        await this.handle!.sync();
      })
      .then(() => callback(), callback);
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    const handle = this.handle;
    this.handle = null;
    if (!handle) {
      callback(err);
      return;
    }
    handle.close().then(
      () => callback(err),
      (closeErr: Error) => callback(err ?? closeErr),
    );
  }

  private async flushPending(): Promise<void> {
    let buffers = this.pending;
    let left = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    while (left > 0) {
      const handle = this.handle;
      if (!handle) throw new Error(`${this.path} was closed while being written`);
      const { bytesWritten } = await handle.writev(buffers);
      if (bytesWritten === 0) throw new Error(`writing ${this.path} made no progress`);
      left -= bytesWritten;
      this.unsynced += bytesWritten;
      if (left > 0) buffers = remainderOf(buffers, bytesWritten);
    }
    if (this.unsynced >= SYNC_EVERY && !this.syncing && this.handle) {
      this.unsynced = 0;
      this.syncing = this.handle
        .datasync()
        .catch((err: Error) => {
          this.syncError ??= err;
        })
        .finally(() => {
          this.syncing = null;
        });
    }
  }
}

/** What is left of `buffers` once their first `written` bytes are gone (a short writev). */
export function remainderOf(buffers: Buffer[], written: number): Buffer[] {
  let skip = written;
  const rest: Buffer[] = [];
  for (const b of buffers) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    rest.push(skip ? b.subarray(skip) : b);
    skip = 0;
  }
  return rest;
}

/**
 * Streams `source` through `counter` into a new temp file. On failure it returns only once the
 * file's stream is closed: pipeline rejects as soon as one stream fails, while the temp file may
 * still be opening on the thread pool. Removing it before then would let the open create it after
 * the removal, leaving a stray `.partial` behind.
 */
export async function writeTemp(source: Readable, counter: Transform, tmp: string): Promise<void> {
  const out = new TempFile(tmp);
  try {
    await pipeline(source, counter, out);
  } catch (err) {
    if (!out.closed) await new Promise<void>((resolve) => out.once('close', () => resolve()));
    throw err;
  }
}
