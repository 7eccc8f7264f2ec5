import { createHash } from 'node:crypto';
import { PassThrough, type Readable } from 'node:stream';
import { pack as tarPack, type Header, type Pack } from 'tar-stream';
import type { BlobStore } from './store/blobs.js';
import type { ImageBlobs } from './store/images.js';

/**
 * The `docker load` archive of an image, generated on the fly from stored blobs (moby's
 * image/tar format: manifest.json + config + one tar per layer; see moby image/tar/load.go).
 * Layers go in as stored, compressed or not: `docker load` sniffs and decompresses each layer and
 * checks it against the config's diff_ids, so the loaded image id is `sha256:<config digest>`.
 *
 * The archive is deterministic (fixed order, names, modes and mtime), so its size and hashes can
 * be computed once at import and served as Content-Length and Content-MD5.
 */

interface Entry { name: string; size: number; content: Buffer | string }

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
  return entriesOf(blobs, repoTags).reduce((sum, e) => sum + 512 + Math.ceil(e.size / 512) * 512, 1024);
}

async function writeEntry(pack: Pack, entry: Entry, store: BlobStore): Promise<void> {
  const header: Partial<Header> & { name: string } = { name: entry.name, size: entry.size, mode: 0o644, mtime: FIXED_MTIME, uid: 0, gid: 0, type: 'file' };
  if (Buffer.isBuffer(entry.content)) {
    const content = entry.content;
    await new Promise<void>((resolve, reject) => pack.entry(header, content, (err) => (err ? reject(err) : resolve())));
    return;
  }
  const source = await store.open(entry.content);
  await new Promise<void>((resolve, reject) => {
    const sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
    source.once('error', (err) => { sink.destroy(err); reject(err); });
    source.pipe(sink);
  });
}

/**
 * Streams the archive. Blobs are opened one at a time as the reader gets to them; nothing is
 * staged. A missing blob or a reader that goes away ends the stream and closes open files.
 */
export function createDockerArchive(store: BlobStore, blobs: ImageBlobs, repoTags: string[] = []): Readable {
  const pack = tarPack();
  const out = new PassThrough();
  pack.on('error', (err: Error) => out.destroy(err));
  out.on('close', () => { if (!out.writableFinished) pack.destroy(); });
  pack.pipe(out);
  void (async () => {
    try {
      for (const entry of entriesOf(blobs, repoTags)) await writeEntry(pack, entry, store);
      pack.finalize();
    } catch (err) {
      pack.destroy(err as Error);
    }
  })();
  return out;
}

export interface ArchiveDigest { size: number; md5: string; sha512: string }

/** Size, md5 (Glance's `checksum`) and sha512 (its `os_hash_value`) of the archive as served. */
export async function digestArchive(store: BlobStore, blobs: ImageBlobs): Promise<ArchiveDigest> {
  const md5 = createHash('md5');
  const sha512 = createHash('sha512');
  let size = 0;
  for await (const chunk of createDockerArchive(store, blobs)) {
    md5.update(chunk as Buffer);
    sha512.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, md5: md5.digest('hex'), sha512: sha512.digest('hex') };
}
