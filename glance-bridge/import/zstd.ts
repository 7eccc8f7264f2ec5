import { spawn } from 'node:child_process';
import { imageError } from '../errors.js';
import { LayerScanner, type ScanLimits } from './layer-scan.js';
import type { BlobStore, PutResult } from '../store/blobs.js';

export const ZSTD_LAYER = 'application/vnd.oci.image.layer.v1.tar+zstd';
export const TAR_LAYER = 'application/vnd.oci.image.layer.v1.tar';

/** The zstd command (Debian's `zstd` package); Node 20's zlib has no zstd. */
export const ZSTD_COMMAND = 'zstd';

/**
 * Decompresses stored zstd blob `digest` into a new blob (the plain layer tar), streaming through
 * the zstd command: dockerd 20.10 cannot load zstd layers, so hosts are served the tar, whose
 * digest is the layer's diff_id. zstd's default decompression memory limit (128 MiB window)
 * bounds its memory; `maxBytes` bounds the output.
 */
export async function decompressZstdBlob(
  blobs: BlobStore,
  digest: string,
  maxBytes: number,
  opts: { command?: string; scan?: ScanLimits } = {},
): Promise<PutResult> {
  const compressedSize = await blobs.size(digest);
  const scanner = opts.scan ? new LayerScanner(digest, 'none', opts.scan, compressedSize ?? undefined) : null;
  try {
    return await convert(blobs, digest, maxBytes, opts.command ?? ZSTD_COMMAND, scanner);
  } finally {
    scanner?.destroy();
  }
}

async function convert(blobs: BlobStore, digest: string, maxBytes: number, command: string, scanner: LayerScanner | null): Promise<PutResult> {
  // Opened first: nothing may be awaited between the spawn and watching its exit.
  const source = await blobs.open(digest);
  const child = spawn(command, ['-d', '-c', '-q', '--no-progress'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    stderr = (stderr + c).slice(-2000);
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'ENOENT'
          ? imageError('MANIFEST_UNSUPPORTED', `layer ${digest} is zstd-compressed and the zstd command is not installed to convert it for dockerd`, { digest })
          : err,
      ),
    );
    child.once('close', (code) => resolve(code));
  });
  child.stdin.on('error', () => {
    /* zstd exited early; its status says why */
  });
  source.pipe(child.stdin);
  try {
    const [put, code] = await Promise.all([
      blobs.ingest(child.stdout, { maxBytes, ...(scanner ? { observe: (c: Buffer) => scanner.write(c), verify: () => scanner.finish() } : {}) }),
      exited,
    ]);
    if (code !== 0) {
      if (put.created) await blobs.remove(put.digest);
      throw imageError('LAYER_INVALID', `layer ${digest} is not valid zstd: ${stderr.trim() || `zstd exited ${code}`}`, { digest });
    }
    return put;
  } catch (err) {
    child.kill('SIGKILL');
    source.destroy();
    await exited.catch(() => undefined);
    if (err instanceof Error && 'code' in err && err.code === 'BLOB_TOO_LARGE') {
      throw imageError('BLOB_TOO_LARGE', `layer ${digest} decompresses to more than ${maxBytes} bytes`, { digest, limit: maxBytes });
    }
    throw err;
  }
}
