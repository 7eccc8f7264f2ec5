/**
 * What an import cannot avoid spending, measured on this machine, for the import benchmark's
 * lower bound: the CPU time of the computations every import must make over the image's bytes
 * (sha256 of each blob, Glance's md5 and sha512, the scanner's gunzip), of a plain download of
 * the same blobs by curl (receiving and writing them, nothing else), and of the registry serving
 * them. Each is measured alone, one after the other, so none slows another.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import { GUNZIP_CHUNK, layerCompression } from '../../../glance-bridge/import/layer-scan.js';
import type { BlobStore } from '../../../glance-bridge/store/blobs.js';
import type { ImageBlobs } from '../../../glance-bridge/store/types.js';

const run = promisify(execFile);
const CHUNK = 1024 * 1024;

/** CPU milliseconds (all threads of this process) that `fn` took. */
async function cpuMs(fn: () => Promise<void> | void): Promise<number> {
  const start = process.cpuUsage();
  await fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000;
}

/** CPU milliseconds of this process's waited-for children so far (/proc/self/stat cutime + cstime). */
export function childrenCpuMs(): number {
  return procCpuMs('self', 13);
}

/** CPU milliseconds process `pid` has used so far (utime + stime); NaN if it cannot be read. */
export function processCpuMs(pid: number): number {
  return procCpuMs(String(pid), 11);
}

function procCpuMs(pid: string, firstField: number): number {
  try {
    // Fields after the command name, which may contain spaces; clock ticks are 100 per second on Linux.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[firstField]) + Number(fields[firstField + 1])) * 10;
  } catch {
    return NaN;
  }
}

/** Feeds `buf` through `update` in 1 MiB chunks, as the importer sees it. */
function chunks(buf: Buffer, update: (chunk: Buffer) => void): void {
  for (let at = 0; at < buf.length; at += CHUNK) update(buf.subarray(at, at + CHUNK));
}

async function gunzipAll(buf: Buffer): Promise<void> {
  const gunzip = createGunzip({ chunkSize: GUNZIP_CHUNK });
  const drained = new Promise<void>((resolve, reject) => {
    gunzip
      .on('data', () => undefined)
      .once('end', resolve)
      .once('error', reject);
  });
  gunzip.end(buf);
  await drained;
}

export interface RequiredCpu {
  sha256: number;
  md5: number;
  sha512: number;
  gunzip: number;
}

/**
 * CPU milliseconds each mandatory computation takes over the image's stored blobs, each on one
 * thread, with the blob already in memory (reading it back is not counted). Glance's md5 and
 * sha512 cover the served archive, which is a little larger than its blobs: counting only the
 * blobs keeps these figures below what the import really spends.
 */
export async function requiredCpu(store: BlobStore, image: ImageBlobs): Promise<RequiredCpu> {
  const totals: RequiredCpu = { sha256: 0, md5: 0, sha512: 0, gunzip: 0 };
  const md5 = createHash('md5');
  const sha512 = createHash('sha512');
  for (const blob of [image.config, ...image.layers]) {
    const bytes = await readFile(store.pathOf(blob.digest));
    totals.sha256 += await cpuMs(() => {
      const h = createHash('sha256');
      chunks(bytes, (c) => h.update(c));
      h.digest();
    });
    totals.md5 += await cpuMs(() => chunks(bytes, (c) => md5.update(c)));
    totals.sha512 += await cpuMs(() => chunks(bytes, (c) => sha512.update(c)));
    if (blob !== image.config && layerCompression(blob.media_type) === 'gzip') totals.gunzip += await cpuMs(() => gunzipAll(bytes));
  }
  md5.digest();
  sha512.digest();
  return totals;
}

export interface DownloadCpu {
  curl: number;
  registry: number;
}

/**
 * CPU milliseconds curl spends downloading `digests` one after the other into files under `dir`
 * (the plainest receive-and-write there is), and what the registry (process `registryPid`, if
 * known) spends serving them meanwhile.
 */
export async function downloadCpu(registry: string, repo: string, digests: string[], dir: string, registryPid: number | null): Promise<DownloadCpu> {
  const curlBefore = childrenCpuMs();
  const registryBefore = registryPid === null ? NaN : processCpuMs(registryPid);
  for (const [i, digest] of digests.entries()) {
    await run('curl', ['-fsS', '-o', join(dir, `blob-${i}`), `http://${registry}/v2/${repo}/blobs/${digest}`], { timeout: 5 * 60_000 });
  }
  return { curl: childrenCpuMs() - curlBefore, registry: registryPid === null ? NaN : processCpuMs(registryPid) - registryBefore };
}
