import type { TransformOptions } from 'node:stream';
import { createGunzip, type Gunzip, type ZlibOptions } from 'node:zlib';
import { BerthError } from '../../common/errors.js';
import { drainedOrClosed } from '../../common/streams.js';
import { imageError } from '../errors.js';
import { TarWalker, type TarEntry } from './tar-walk.js';

/**
 * Checks a layer while it streams into the store: decompresses gzip on the fly, walks the tar
 * headers as dockerd's Go reader will (tar-walk.ts; bodies are skipped unread) and refuses what could reach outside the container's root
 * when a host unpacks it, or exhaust its disk. dockerd has its own defences; this one makes the
 * image `killed` at import instead of a host failing (or worse) at boot, and keeps such layers
 * out of the store.
 */

export interface ScanLimits {
  /** Most bytes a layer may unpack to. */
  maxUncompressedBytes: number;
  /** Most uncompressed bytes per compressed byte, once a layer is past RATIO_FLOOR. */
  maxRatio: number;
}

// Small layers of zeros or text compress far beyond any sane ratio; only large ones are bombs.
const RATIO_FLOOR = 64 * 1024 * 1024;
const WHITEOUT = '.wh.';
export const GUNZIP_CHUNK = 512 * 1024;
// Compressed bytes gathered before one write into the gunzip stream: each write is a round trip
// to the thread pool, and a download arrives in 64 KiB chunks. Measured over 100 MB, 64 KiB
// writes cost 3× the CPU of 1 MiB ones (the inflating itself is cheap on incompressible layers);
// on the 400 MB import, 256 KiB batches save as much as 1 MiB ones, which raised its peak RSS by
// 25 MB.
export const GUNZIP_INPUT = 256 * 1024;
// The gunzip stream's buffer. A batch is given to it only once it has inflated the one before
// (its buffer is empty), so that it never holds more than one batch: the download gathers the next
// batch while the thread pool inflates this one, and the compressed bytes counted for the ratio
// check are never more than one batch (256 KiB) ahead of what gunzip has read; unbatched writes
// into a 1 MiB buffer let them be up to 1 MiB and a chunk ahead, so the check is no looser.
// A batch is never smaller than the buffer, so each one fills it and 'drain' says it was read.
const GUNZIP_BACKLOG = GUNZIP_INPUT;
const OPAQUE = '.wh..wh..opq';

type Compression = 'gzip' | 'none';

export function layerCompression(mediaType: string): Compression | null {
  if (mediaType.endsWith('+gzip') || mediaType.endsWith('.tar.gzip')) return 'gzip';
  if (mediaType.endsWith('.tar') || mediaType.endsWith('layer.v1.tar')) return 'none';
  return null;
}

export class LayerScanner {
  private readonly gunzip: Gunzip | null;
  private readonly walker = new TarWalker((entry) => this.checkEntry(entry));
  private readonly symlinks = new Set<string>();
  private compressed = 0;
  private uncompressed = 0;
  /**
   * Two batch buffers, used in turn: one is gathering compressed bytes while gunzip reads the
   * other. Reused rather than allocated per batch: a fresh buffer per batch cost more (in
   * page faults and in the collector's threads) than the writes it saved.
   */
  private readonly batches: [Buffer, Buffer] | null;
  private current = 0;
  private filled = 0;
  private failure: Error | null = null;
  /** Settles once the gunzip stream has ended, failed or been destroyed. */
  private readonly inflated: Promise<void>;

  /** `compressedSize`: for a tar converted from another compression, the size the ratio is taken against. */
  constructor(
    private readonly digest: string,
    compression: Compression,
    private readonly limits: ScanLimits,
    private readonly compressedSize?: number,
  ) {
    if (compression !== 'gzip') {
      this.batches = null;
      this.gunzip = null;
      this.inflated = Promise.resolve();
      return;
    }
    // Large output chunks: the walk's cost is per chunk, not per byte.
    // zlib streams take the stream options too, though their type does not say so.
    const options: ZlibOptions & TransformOptions = { chunkSize: GUNZIP_CHUNK, writableHighWaterMark: GUNZIP_BACKLOG };
    const gunzip = createGunzip(options);
    this.gunzip = gunzip;
    this.batches = [Buffer.allocUnsafe(GUNZIP_INPUT), Buffer.allocUnsafe(GUNZIP_INPUT)];
    gunzip.on('data', (chunk: Buffer) => this.feedTar(chunk));
    this.inflated = new Promise<void>((resolve) => {
      gunzip.once('end', resolve);
      gunzip.once('close', resolve);
      gunzip.once('error', (err) => {
        this.fail(err);
        resolve();
      });
    });
  }

  /** Feeds one compressed chunk; resolves when the scanner can take more. */
  async write(chunk: Buffer): Promise<void> {
    this.throwIfFailed();
    if (!this.gunzip) {
      this.compressed += chunk.length;
      this.feedTar(chunk);
      return;
    }
    for (let at = 0; at < chunk.length;) {
      const copied = chunk.copy(this.batches![this.current]!, this.filled, at);
      this.filled += copied;
      at += copied;
      if (this.filled < GUNZIP_INPUT) continue;
      // The other batch may still be being inflated: wait until gunzip has read all of it, which
      // also frees its buffer for the next batch.
      if (this.gunzip.writableNeedDrain) await drainedOrClosed(this.gunzip);
      this.throwIfFailed();
      this.flushBatch();
    }
    this.throwIfFailed();
  }

  /** Gives the gathered bytes to gunzip as one write; they count as compressed bytes from now. */
  private flushBatch(): void {
    const gunzip = this.gunzip!;
    if (!this.filled || gunzip.destroyed) return;
    this.compressed += this.filled;
    gunzip.write(this.batches![this.current]!.subarray(0, this.filled));
    this.current = 1 - this.current;
    this.filled = 0;
  }

  /** Ends the input; throws LAYER_UNSAFE, LAYER_INVALID or BLOB_TOO_LARGE if the layer is refused. */
  async finish(): Promise<void> {
    this.throwIfFailed();
    if (this.gunzip) {
      if (this.gunzip.writableNeedDrain) await drainedOrClosed(this.gunzip);
      this.throwIfFailed();
      this.flushBatch();
      this.gunzip.end();
      await this.inflated;
      this.throwIfFailed();
    }
    try {
      this.walker.end();
    } catch (err) {
      this.fail(err);
    }
    this.throwIfFailed();
  }

  destroy(): void {
    this.gunzip?.destroy();
  }

  private fail(err: unknown): void {
    this.failure ??= err instanceof Error ? err : new Error(String(err));
    this.gunzip?.destroy();
  }

  private throwIfFailed(): void {
    const err = this.failure;
    if (!err) return;
    if (err instanceof BerthError) throw err;
    throw imageError('LAYER_INVALID', `layer ${this.digest} is not a valid ${this.gunzip ? 'gzip-compressed ' : ''}tar: ${err.message}`, {
      digest: this.digest,
    });
  }

  /** Walks the next uncompressed bytes; a refusal is kept as the failure, not thrown. */
  private feedTar(chunk: Buffer): void {
    try {
      this.uncompressed += chunk.length;
      this.checkSize();
      this.walker.write(chunk);
    } catch (err) {
      this.fail(err);
    }
  }

  private checkSize(): void {
    const { maxUncompressedBytes, maxRatio } = this.limits;
    const compressed = this.compressedSize ?? this.compressed;
    const overRatio = this.uncompressed > RATIO_FLOOR && this.uncompressed > maxRatio * Math.max(compressed, 1);
    if (this.uncompressed > maxUncompressedBytes || overRatio) {
      const why = overRatio ? `more than ${maxRatio} times its compressed size` : `more than ${maxUncompressedBytes} bytes`;
      throw imageError('BLOB_TOO_LARGE', `layer ${this.digest} unpacks to ${why} (a decompression bomb?)`, {
        digest: this.digest,
        limit: maxUncompressedBytes,
        ratio: maxRatio,
      });
    }
  }

  private unsafe(name: string, why: string): never {
    // The walk keeps names byte for byte (latin1); people read them as UTF-8.
    const shown = Buffer.from(name, 'latin1').toString('utf8');
    throw imageError('LAYER_UNSAFE', `layer ${this.digest} has an unsafe entry ${JSON.stringify(shown)}: ${why}`, { digest: this.digest, entry: shown });
  }

  /** Path components of an archive name, refusing absolute names and any `..`. */
  private components(name: string, what: string): string[] {
    if (name.startsWith('/')) this.unsafe(name, `${what} is an absolute path`);
    const parts = name.split('/').filter((p) => p !== '' && p !== '.');
    if (parts.includes('..')) this.unsafe(name, `${what} contains ..`);
    return parts;
  }

  private checkEntry(h: TarEntry): void {
    const parts = this.components(h.name, 'the path');
    // A symlink earlier in this layer must not become a parent: writing through it lands wherever it points.
    for (let i = 1; i < parts.length; i++) {
      if (this.symlinks.has(parts.slice(0, i).join('/'))) this.unsafe(h.name, `it is written through the symlink ${parts.slice(0, i).join('/')}`);
    }
    const path = parts.join('/');
    if (h.type === 'symlink') this.symlinks.add(path);
    else this.symlinks.delete(path);
    if (h.type === 'link') this.components(h.linkname, 'the hard link target');
    const base = parts.at(-1) ?? '';
    if (base.startsWith(WHITEOUT) && base !== OPAQUE) {
      const target = base.slice(WHITEOUT.length);
      if (target === '' || target === '.' || target === '..') this.unsafe(h.name, 'the whiteout names no file of its directory');
    }
  }
}
