import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { invalidInput } from '../../common/errors.js';
import { fsyncPath, makePrivateDirSync } from '../../common/fs.js';
import { imageError } from '../errors.js';
import { DigestingCounter, writeTemp } from './blob-write.js';
import { WorkerFileHasher, type FileHasher } from './file-digest.js';

export { remainderOf } from './blob-write.js';

const DIGEST_RE = /^sha256:([0-9a-f]{64})$/;

export function isDigest(value: unknown): value is string {
  return typeof value === 'string' && DIGEST_RE.test(value);
}

export function sha256Digest(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

export interface PutOptions {
  /** Size the manifest promised; a different size is refused even if the digest would match. */
  expectedSize?: number;
  maxBytes?: number;
  /** Called with each chunk's length, for progress reporting. */
  onBytes?: (n: number) => void;
  /** Sees every chunk before it is written (a layer scanner); may apply back-pressure. */
  observe?: (chunk: Buffer) => void | Promise<void>;
  /** Last say before the blob becomes visible, after size and digest checked out. */
  verify?: () => Promise<void>;
}

export interface IngestOptions {
  maxBytes?: number;
  /** Sees every chunk before it is written (extra hashes, format checks); may apply back-pressure. */
  observe?: (chunk: Buffer) => void | Promise<void>;
  /** Called with the digest before the blob becomes visible, so GC can be told to keep it. */
  beforePublish?: (digest: string) => void;
  /** Last say before the blob becomes visible. */
  verify?: () => Promise<void>;
}

export interface BlobStoreOptions {
  /**
   * Hashes the written temp file of a put whose expected size is at least `offloadMinBytes`, off
   * the event loop (default: a worker thread started on first use); null hashes every blob inline.
   */
  hasher?: FileHasher | null;
  /** Default 8 MiB: below it, a worker round trip costs more than the hashing it moves. */
  offloadMinBytes?: number;
}

export interface PutResult {
  digest: string;
  size: number;
  created: boolean;
}

/**
 * Content-addressed blobs under `root/sha256/<2 hex>/<hex>`. A blob becomes visible only whole
 * and verified: it is written to `root/tmp`, hashed while streaming, fsynced, checked against the
 * digest it was put under, then renamed into place (and the directory fsynced), so a crash or a
 * bad download never leaves a readable blob with the wrong content.
 */
export class BlobStore {
  private readonly hasher: FileHasher | null;
  private readonly offloadMinBytes: number;

  constructor(
    readonly root: string,
    opts: BlobStoreOptions = {},
  ) {
    this.hasher = opts.hasher === undefined ? new WorkerFileHasher() : opts.hasher;
    this.offloadMinBytes = opts.offloadMinBytes ?? 8 * 1024 * 1024;
  }

  /** Stops the hashing worker, if one was started. */
  async close(): Promise<void> {
    await this.hasher?.close();
  }

  async init(): Promise<void> {
    // Private image content: only the service's user reads the store (0700 folders, 0600 blobs).
    makePrivateDirSync(this.root, { tighten: true });
    await mkdir(join(this.root, 'sha256'), { recursive: true, mode: 0o700 });
    await mkdir(join(this.root, 'tmp'), { recursive: true, mode: 0o700 });
  }

  /** Where blob `digest` is (or would be) stored; INVALID_INPUT for anything but a sha256 digest. */
  pathOf(digest: string): string {
    const hex = DIGEST_RE.exec(digest)?.[1];
    if (!hex) throw invalidInput(`not a sha256 digest: ${JSON.stringify(digest)}`, { digest });
    return join(this.root, 'sha256', hex.slice(0, 2), hex);
  }

  async size(digest: string): Promise<number | null> {
    try {
      return (await stat(this.pathOf(digest))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async has(digest: string): Promise<boolean> {
    return (await this.size(digest)) !== null;
  }

  /** A read stream over the blob (or bytes `start`..`end` inclusive); BLOB_NOT_FOUND if it is absent. */
  async open(digest: string, range?: { start: number; end: number }): Promise<Readable> {
    const handle = await this.openFile(digest);
    return handle.createReadStream({ highWaterMark: 1024 * 1024, ...(range ? { start: range.start, end: range.end } : {}) });
  }

  /** The blob's file, open for reading (the caller closes it); BLOB_NOT_FOUND if it is absent. */
  async openFile(digest: string): Promise<FileHandle> {
    return open(this.pathOf(digest), 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw imageError('BLOB_NOT_FOUND', `blob ${digest} is not in the store`, { digest });
      throw err;
    });
  }

  /**
   * Stores content whose digest is not known beforehand (uploads, converted layers): it is
   * hashed while streaming and lands under the digest it turns out to have. Same guarantees as
   * put: nothing is visible unless the whole stream arrived, and the temp file never outlives it.
   */
  async ingest(source: Readable, opts: IngestOptions = {}): Promise<PutResult> {
    const tmp = join(this.root, 'tmp', `${randomBytes(12).toString('hex')}.partial`);
    const counter = new DigestingCounter(true, opts.maxBytes ?? Number.MAX_SAFE_INTEGER, undefined, opts.observe);
    try {
      await writeTemp(source, counter, tmp);
      const digest = `sha256:${counter.hash!.digest('hex')}`;
      await opts.verify?.();
      const final = this.pathOf(digest);
      opts.beforePublish?.(digest);
      if ((await this.size(digest)) !== null) {
        await rm(tmp, { force: true });
        return { digest, size: counter.bytes, created: false };
      }
      await this.publish(tmp, final);
      return { digest, size: counter.bytes, created: true };
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /** Renames a finished (so fsynced: TempFile) temp file into place, and syncs its directory. */
  private async publish(tmp: string, final: string): Promise<void> {
    const dir = join(final, '..');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await rename(tmp, final);
    await fsyncPath(dir);
  }

  /**
   * Stores `source` under `digest`. Idempotent: when the blob is already present the source is
   * discarded and `created` is false. On any failure nothing is visible and the temp file is gone.
   */
  async put(digest: string, source: Readable, opts: PutOptions = {}): Promise<PutResult> {
    const final = this.pathOf(digest);
    const existing = await this.size(digest);
    if (existing !== null) {
      source.destroy();
      return { digest, size: existing, created: false };
    }
    const tmp = join(this.root, 'tmp', `${randomBytes(12).toString('hex')}.partial`);
    // A large blob of known size is hashed from its temp file off the event loop, after the size check.
    const hasher = opts.expectedSize !== undefined && opts.expectedSize >= this.offloadMinBytes ? this.hasher : null;
    const counter = new DigestingCounter(!hasher, opts.maxBytes ?? Number.MAX_SAFE_INTEGER, opts.onBytes, opts.observe);
    try {
      await writeTemp(source, counter, tmp);
      if (opts.expectedSize !== undefined && counter.bytes !== opts.expectedSize) {
        throw imageError('BLOB_SIZE_MISMATCH', `blob ${digest} has ${counter.bytes} bytes, expected ${opts.expectedSize}`, {
          digest,
          expected: opts.expectedSize,
          actual: counter.bytes,
        });
      }
      const actual = `sha256:${counter.hash ? counter.hash.digest('hex') : await hasher!.sha256(tmp)}`;
      if (actual !== digest) throw imageError('DIGEST_MISMATCH', `content of blob ${digest} hashes to ${actual}`, { expected: digest, actual });
      await opts.verify?.();
      await this.publish(tmp, final);
      return { digest, size: counter.bytes, created: true };
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /** Removes a blob; absent blobs are not an error. */
  async remove(digest: string): Promise<void> {
    await unlink(this.pathOf(digest)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }

  async *list(): AsyncGenerator<string> {
    const base = join(this.root, 'sha256');
    for (const shard of await readdir(base).catch(() => [] as string[])) {
      for (const hex of await readdir(join(base, shard)).catch(() => [] as string[])) {
        const digest = `sha256:${hex}`;
        if (isDigest(digest)) yield digest;
      }
    }
  }

  /**
   * Removes every blob not in `referenced`. The caller must include blobs that running imports
   * are about to write (their records reference them before the fetch starts), or it races them.
   */
  async collectGarbage(referenced: ReadonlySet<string> | ((digest: string) => boolean | Promise<boolean>)): Promise<string[]> {
    const keep = typeof referenced === 'function' ? referenced : (d: string) => referenced.has(d);
    const removed: string[] = [];
    for await (const digest of this.list()) {
      if (await keep(digest)) continue;
      await this.remove(digest);
      removed.push(digest);
    }
    return removed;
  }
}
