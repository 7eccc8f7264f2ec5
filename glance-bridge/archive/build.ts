import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { BlobStore } from '../store/blobs.js';
import type { ImageBlobs } from '../store/types.js';

/**
 * The `docker load` archive of an image, generated on the fly from stored blobs (moby's
 * image/tar format: manifest.json + config + one tar per layer; see moby image/tar/load.go).
 * Layers go in as stored, compressed or not: `docker load` sniffs and decompresses each layer and
 * checks it against the config's diff_ids, so the loaded image id is `sha256:<config digest>`.
 *
 * The archive is deterministic (fixed order, names, modes and mtime), so its size and hashes can
 * be computed once at import and served as Content-Length and Content-MD5. Its bytes are defined
 * once, by archiveSegments: streaming, sizing and hashing all walk that list. The tar headers are
 * the ones tar-stream wrote when it generated the archive (a test compares them byte for byte),
 * so images imported before keep their recorded checksums.
 */

interface Entry {
  name: string;
  size: number;
  content: Buffer | string;
}

const hex = (digest: string): string => digest.slice('sha256:'.length);
const FIXED_MTIME = new Date(0);

function entriesOf(blobs: ImageBlobs, repoTags: string[]): Entry[] {
  const layerPaths = blobs.layers.map((l) => `${hex(l.digest)}/layer.tar`);
  const manifest = Buffer.from(JSON.stringify([{ Config: `${hex(blobs.config.digest)}.json`, RepoTags: repoTags, Layers: layerPaths }]));
  const entries: Entry[] = [
    { name: 'manifest.json', size: manifest.length, content: manifest },
    { name: `${hex(blobs.config.digest)}.json`, size: blobs.config.size, content: blobs.config.digest },
  ];
  // An image may list the same layer twice (two steps with identical diffs): write it once.
  const seen = new Set<string>();
  for (const layer of blobs.layers) {
    if (seen.has(layer.digest)) continue;
    seen.add(layer.digest);
    entries.push({ name: `${hex(layer.digest)}/layer.tar`, size: layer.size, content: layer.digest });
  }
  return entries;
}

/** Bytes the archive will have: a 512-byte header and padded data per entry, then two zero blocks. */
export function archiveSize(blobs: ImageBlobs, repoTags: string[] = []): number {
  return archiveSegments(blobs, repoTags).reduce((sum, seg) => sum + ('bytes' in seg ? seg.bytes.length : seg.size), 0);
}

async function* archiveBytes(store: Pick<BlobStore, 'open'>, segments: ArchiveSegment[]): AsyncGenerator<Buffer> {
  for (const seg of segments) {
    if ('bytes' in seg) {
      yield seg.bytes;
      continue;
    }
    // Leaving this loop early (the reader went away) destroys the blob's stream and closes its file.
    let sent = 0;
    for await (const chunk of await store.open(seg.digest)) {
      sent += (chunk as Buffer).length;
      if (sent > seg.size) break;
      yield chunk as Buffer;
    }
    if (sent !== seg.size) throw new Error(`blob ${seg.digest} does not have the ${seg.size} bytes its image records`);
  }
}

/**
 * Streams the archive. Blobs are opened one at a time as the reader gets to them; nothing is
 * staged. A missing blob or a reader that goes away ends the stream and closes open files.
 */
export function createDockerArchive(store: Pick<BlobStore, 'open'>, blobs: ImageBlobs, repoTags: string[] = []): Readable {
  return Readable.from(archiveBytes(store, archiveSegments(blobs, repoTags)), { objectMode: false });
}

export interface ArchiveDigest {
  size: number;
  md5: string;
  sha512: string;
}

/**
 * The archive as a list of byte runs: literal bytes (tar headers, padding, the end blocks) and
 * blobs to read from the store. Hashing walks it with one reused buffer, allocating nothing per
 * chunk; createDockerArchive streams it.
 */
export type ArchiveSegment = { bytes: Buffer } | { digest: string; size: number };

export function archiveSegments(blobs: ImageBlobs, repoTags: string[] = []): ArchiveSegment[] {
  const out: ArchiveSegment[] = [];
  for (const e of entriesOf(blobs, repoTags)) {
    out.push({ bytes: ustarHeader(e.name, e.size) });
    out.push(Buffer.isBuffer(e.content) ? { bytes: e.content } : { digest: e.content, size: e.size });
    const pad = (512 - (e.size % 512)) % 512;
    if (pad) out.push({ bytes: Buffer.alloc(pad) });
  }
  out.push({ bytes: Buffer.alloc(1024) });
  return out;
}

const octal = (value: number, digits: number): string => `${value.toString(8).padStart(digits, '0')} `;

/** A ustar header for a regular file, byte for byte as tar-stream writes one with FIXED_MTIME, mode 0644, uid and gid 0. */
export function ustarHeader(name: string, size: number): Buffer {
  const buf = Buffer.alloc(512);
  if (Buffer.byteLength(name) !== name.length || name.length > 100) throw new Error(`archive entry name ${JSON.stringify(name)} needs a long-name header`);
  buf.write(name, 0, 'ascii');
  buf.write(octal(0o644, 6), 100, 'ascii');
  buf.write(octal(0, 6), 108, 'ascii');
  buf.write(octal(0, 6), 116, 'ascii');
  if (size.toString(8).length > 11) {
    // Sizes past 8 GiB: GNU base-256, big-endian in the 11 bytes after a 0x80 marker.
    buf[124] = 0x80;
    let rest = size;
    for (let i = 11; i > 0; i--) {
      buf[124 + i] = rest % 256;
      rest = Math.floor(rest / 256);
    }
  } else {
    buf.write(octal(size, 11), 124, 'ascii');
  }
  buf.write(octal(Math.floor(FIXED_MTIME.getTime() / 1000), 11), 136, 'ascii');
  buf[156] = 0x30; // '0': a regular file
  buf.write('ustar\u000000', 257, 'latin1');
  buf.write(octal(0, 6), 329, 'ascii');
  buf.write(octal(0, 6), 337, 'ascii');
  let sum = 8 * 0x20;
  for (let i = 0; i < 512; i++) if (i < 148 || i >= 156) sum += buf[i]!;
  buf.write(octal(sum, 6), 148, 'ascii');
  return buf;
}

/** One blob open for reading from its start. */
export interface BlobReader {
  /** Reads up to `length` bytes into `buf` from where the last read ended; 0 at the end. */
  read(buf: Buffer, length: number): number | Promise<number>;
  close(): void | Promise<void>;
}

/** Where hashing reads blobs: the store, or a view that waits for blobs still arriving. */
export interface BlobFiles {
  openFile(digest: string): Promise<BlobReader>;
}

/** The store's blobs, read through the thread pool (for the event loop). */
export function storeFiles(store: Pick<BlobStore, 'openFile'>): BlobFiles {
  return {
    async openFile(digest) {
      const file: FileHandle = await store.openFile(digest);
      return { read: async (buf, length) => (await file.read(buf, 0, length, null)).bytesRead, close: () => file.close() };
    },
  };
}

const READ_CHUNK = 1024 * 1024;

/** Size and hex digests of the archive under each of `algorithms`, reading blobs into one reused buffer. */
export async function hashArchive(files: BlobFiles, segments: ArchiveSegment[], algorithms: string[]): Promise<{ size: number; hex: string[] }> {
  const hashes = algorithms.map((a) => createHash(a));
  const update = (b: Buffer): void => {
    for (const h of hashes) h.update(b);
  };
  const buf = Buffer.allocUnsafe(READ_CHUNK);
  let size = 0;
  for (const seg of segments) {
    if ('bytes' in seg) {
      update(seg.bytes);
      size += seg.bytes.length;
      continue;
    }
    const file = await files.openFile(seg.digest);
    try {
      let left = seg.size;
      while (left > 0) {
        const bytesRead = await file.read(buf, Math.min(READ_CHUNK, left));
        if (bytesRead === 0) throw new Error(`blob ${seg.digest} is shorter than its ${seg.size} bytes`);
        update(buf.subarray(0, bytesRead));
        left -= bytesRead;
      }
    } finally {
      await file.close();
    }
    size += seg.size;
  }
  return { size, hex: hashes.map((h) => h.digest('hex')) };
}

/**
 * Size, md5 (Glance's `checksum`) and sha512 (its `os_hash_value`) of the data as served: the
 * archive of an imported image's blobs, or the segments given (an uploaded image's one file).
 */
export async function digestArchive(store: Pick<BlobStore, 'openFile'>, blobs: ImageBlobs | ArchiveSegment[]): Promise<ArchiveDigest> {
  const { size, hex } = await hashArchive(storeFiles(store), Array.isArray(blobs) ? blobs : archiveSegments(blobs), ['md5', 'sha512']);
  return { size, md5: hex[0]!, sha512: hex[1]! };
}
