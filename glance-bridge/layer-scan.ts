import { once } from 'node:events';
import { createGunzip, type Gunzip } from 'node:zlib';
import { extract as tarExtract, type Extract, type Header } from 'tar-stream';
import { BerthError } from '../common/errors.js';
import { imageError } from './errors.js';

/**
 * Checks a layer while it streams into the store: decompresses gzip on the fly, parses the tar
 * headers (bodies are drained unread) and refuses what could reach outside the container's root
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
const ENTRY_TYPES = new Set(['file', 'contiguous-file', 'directory', 'symlink', 'link', 'character-device', 'block-device', 'fifo']);
const WHITEOUT = '.wh.';
const GUNZIP_CHUNK = 512 * 1024;
const OPAQUE = '.wh..wh..opq';

type Compression = 'gzip' | 'none';

export function layerCompression(mediaType: string): Compression | null {
  if (mediaType.endsWith('+gzip') || mediaType.endsWith('.tar.gzip')) return 'gzip';
  if (mediaType.endsWith('.tar') || mediaType.endsWith('layer.v1.tar')) return 'none';
  return null;
}

export class LayerScanner {
  private readonly gunzip: Gunzip | null;
  private readonly extract: Extract = tarExtract();
  private readonly symlinks = new Set<string>();
  private compressed = 0;
  private uncompressed = 0;
  private failure: Error | null = null;
  private readonly done: Promise<void>;

  /** `compressedSize`: for a tar converted from another compression, the size the ratio is taken against. */
  constructor(private readonly digest: string, compression: Compression, private readonly limits: ScanLimits, private readonly compressedSize?: number) {
    // Large output chunks: the tar parser's cost is per chunk, not per byte.
    this.gunzip = compression === 'gzip' ? createGunzip({ chunkSize: GUNZIP_CHUNK }) : null;
    this.done = Promise.all([this.consumeEntries(), this.gunzip ? this.pumpGunzip(this.gunzip) : Promise.resolve()]).then(() => undefined);
    this.done.catch((err: unknown) => { this.failure ??= err as Error; });
  }

  /** Feeds one compressed chunk; resolves when the scanner can take more. */
  async write(chunk: Buffer): Promise<void> {
    this.throwIfFailed();
    this.compressed += chunk.length;
    if (this.gunzip) {
      if (!this.gunzip.write(chunk)) await this.waitFor(this.gunzip, 'drain');
    } else {
      await this.feedTar(chunk);
    }
    this.throwIfFailed();
  }

  /** Ends the input; throws LAYER_UNSAFE, LAYER_INVALID or BLOB_TOO_LARGE if the layer is refused. */
  async finish(): Promise<void> {
    this.throwIfFailed();
    if (this.gunzip) this.gunzip.end();
    else (this.extract as unknown as { end(): void }).end();
    await this.done.catch(() => undefined);
    this.throwIfFailed();
  }

  destroy(): void {
    this.gunzip?.destroy();
    this.extract.destroy();
  }

  private throwIfFailed(): void {
    const err = this.failure;
    if (!err) return;
    if (err instanceof BerthError) throw err;
    throw imageError('LAYER_INVALID', `layer ${this.digest} is not a valid ${this.gunzip ? 'gzip-compressed ' : ''}tar: ${err.message}`, { digest: this.digest });
  }

  private async waitFor(stream: NodeJS.EventEmitter, event: string): Promise<void> {
    await Promise.race([once(stream, event), this.done.catch(() => undefined)]);
  }

  private async pumpGunzip(gunzip: Gunzip): Promise<void> {
    for await (const chunk of gunzip) await this.feedTar(chunk as Buffer);
    (this.extract as unknown as { end(): void }).end();
  }

  private async feedTar(chunk: Buffer): Promise<void> {
    this.uncompressed += chunk.length;
    this.checkSize();
    if (!this.extract.write(chunk)) await this.waitFor(this.extract, 'drain');
  }

  private checkSize(): void {
    const { maxUncompressedBytes, maxRatio } = this.limits;
    const compressed = this.compressedSize ?? this.compressed;
    const overRatio = this.uncompressed > RATIO_FLOOR && this.uncompressed > maxRatio * Math.max(compressed, 1);
    if (this.uncompressed > maxUncompressedBytes || overRatio) {
      const why = overRatio ? `more than ${maxRatio} times its compressed size` : `more than ${maxUncompressedBytes} bytes`;
      const err = imageError('BLOB_TOO_LARGE', `layer ${this.digest} unpacks to ${why} (a decompression bomb?)`, { digest: this.digest, limit: maxUncompressedBytes, ratio: maxRatio });
      this.failure ??= err;
      throw err;
    }
  }

  private async consumeEntries(): Promise<void> {
    for await (const entry of this.extract) {
      this.checkEntry(entry.header);
      // Bodies are not needed, only drained (resume is far cheaper than iterating the chunks).
      await drain(entry);
    }
  }

  private unsafe(name: string, why: string): never {
    throw imageError('LAYER_UNSAFE', `layer ${this.digest} has an unsafe entry ${JSON.stringify(name)}: ${why}`, { digest: this.digest, entry: name });
  }

  /** Path components of an archive name, refusing absolute names and any `..`. */
  private components(name: string, what: string): string[] {
    if (name.startsWith('/')) this.unsafe(name, `${what} is an absolute path`);
    const parts = name.split('/').filter((p) => p !== '' && p !== '.');
    if (parts.includes('..')) this.unsafe(name, `${what} contains ..`);
    return parts;
  }

  private checkEntry(h: Header): void {
    const type = h.type ?? 'file';
    if (!ENTRY_TYPES.has(type)) this.unsafe(h.name, `entry type ${type} is not allowed in a layer`);
    const parts = this.components(h.name, 'the path');
    // A symlink earlier in this layer must not become a parent: writing through it lands wherever it points.
    for (let i = 1; i < parts.length; i++) {
      if (this.symlinks.has(parts.slice(0, i).join('/'))) this.unsafe(h.name, `it is written through the symlink ${parts.slice(0, i).join('/')}`);
    }
    const path = parts.join('/');
    if (type === 'symlink') this.symlinks.add(path);
    else this.symlinks.delete(path);
    if (type === 'link') this.components(h.linkname ?? '', 'the hard link target');
    const base = parts.at(-1) ?? '';
    if (base.startsWith(WHITEOUT) && base !== OPAQUE) {
      const target = base.slice(WHITEOUT.length);
      if (target === '' || target === '.' || target === '..') this.unsafe(h.name, 'the whiteout names no file of its directory');
    }
  }
}

/** Reads an entry's body to its end without looking at it; fails if the entry closes first. */
function drain(entry: { once(event: string, fn: (...args: unknown[]) => void): unknown; resume(): unknown }): Promise<void> {
  return new Promise((resolve, reject) => {
    entry.once('end', () => resolve());
    entry.once('error', (err) => reject(err as Error));
    entry.once('close', () => reject(new Error('the archive ended inside an entry')));
    entry.resume();
  });
}
