import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { BlobStore, sha256Digest } from '../../../glance-bridge/store/blobs.js';
import type { ImageBlobs } from '../../../glance-bridge/store/types.js';
import { childrenCpuMs, processCpuMs, requiredCpu } from '../../../tools/bench/lib/import-floor.js';

const GZIP_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
const TAR_LAYER = 'application/vnd.docker.image.rootfs.diff.tar';
const CONFIG = 'application/vnd.docker.container.image.v1+json';

describe('bench import floor', () => {
  let dir: string;
  let store: BlobStore;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'berth-floor-'));
    store = new BlobStore(join(dir, 'blobs'));
    await store.init();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function blob(bytes: Buffer, mediaType: string) {
    const digest = sha256Digest(bytes);
    await store.put(digest, Readable.from([bytes]));
    return { digest, media_type: mediaType, size: bytes.length };
  }

  it('reads a process’s CPU time from /proc, and NaN for a process that does not exist', () => {
    assert.ok(Number.isFinite(processCpuMs(process.pid)));
    assert.ok(Number.isNaN(processCpuMs(2 ** 22 + 1)));
  });

  it('counts the CPU time of children once they are waited for', async () => {
    const before = childrenCpuMs();
    // A child that spins until it has used 300 ms of CPU by its own clock (not the wall clock,
    // which on a loaded machine passes with little CPU given to the child).
    const spin = 'const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; }; while (cpu() < 300);';
    await promisify(execFile)(process.execPath, ['-e', spin]);
    assert.ok(childrenCpuMs() - before >= 150, `children CPU grew by ${childrenCpuMs() - before} ms`);
  });

  it('gunzips the gzip layers and only those', async () => {
    const config = await blob(Buffer.from('{}'), CONFIG);
    const plain = await blob(Buffer.from('not a tar and not gzip either'), TAR_LAYER);
    const image: ImageBlobs = { config, layers: [plain, await blob(gzipSync(Buffer.alloc(1 << 20)), GZIP_LAYER)] };
    const costs = await requiredCpu(store, image);
    for (const k of ['sha256', 'md5', 'sha512', 'gunzip'] as const) assert.ok(costs[k] >= 0 && Number.isFinite(costs[k]), k);
    // A gzip layer that is not gzip fails the pass: it really inflates each gzip layer.
    const broken = await blob(Buffer.from('not gzip at all'), GZIP_LAYER);
    await assert.rejects(requiredCpu(store, { config, layers: [plain, broken] }), /header/);
  });
});
