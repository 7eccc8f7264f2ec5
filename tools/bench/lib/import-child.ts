/**
 * One importer in its own process, for the import benchmark: a fresh store under the given state
 * directory, the real registry client, and the bridge's Importer, so its memory and event loop
 * are its own. Imports the references given, one after the other, and prints one JSON line each:
 * wall time, bytes the registry client received, and the process's peak RSS so far. With
 * `+costs`, also what each computation every import must make costs over that image
 * (import-floor.ts), measured after the import and its peak RSS.
 *
 * With `+glance`, each image is then exported into the Glance that BENCH_GLANCE (JSON: `url` and a
 * `[glance]`-style `keystone` block) names, as `berth image import --to-glance` does, and the line
 * has the export's time too; the remote copy is deleted afterwards.
 *
 * argv: STATE_DIR REGISTRY(HOST:PORT) scan|noscan[+costs][+glance][+hashfirst] REF...
 * (+hashfirst: active only with Glance's hashes known, `[image_store] active_before_hashes = false`)
 * BENCH_INLINE_SHA256=1: every blob's sha256 on the event loop as it streams (the store's way
 * before large blobs were hashed from their temp file on a worker thread), for comparison.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { migrate, openDatabase, tuneSqlite } from '../../../common/db.js';
import { createLogger, silentLogger } from '../../../common/log.js';
import type { KeystoneCredentials } from '../../../common/keystone/index.js';
import type { ImageService } from '../../../glance-bridge/client/types.js';
import { Importer } from '../../../glance-bridge/import/importer.js';
import { HttpRegistryClient } from '../../../glance-bridge/registry/http.js';
import type { FetchedBlob, RegistryClient, RepositoryRef } from '../../../glance-bridge/registry/types.js';
import { BlobStore } from '../../../glance-bridge/store/blobs.js';
import { ImageRepository } from '../../../glance-bridge/store/images.js';
import { MIGRATIONS_TABLE, migrations } from '../../../glance-bridge/store/migrations.js';
import { requiredCpu } from './import-floor.js';

/** Counts the bytes of every blob and manifest body the importer receives. */
class ByteCountingClient implements RegistryClient {
  bytes = 0;
  constructor(private readonly inner: RegistryClient) {}
  ping(registry: string) {
    return this.inner.ping(registry);
  }
  async fetchManifest(repo: RepositoryRef, reference: string) {
    const m = await this.inner.fetchManifest(repo, reference);
    this.bytes += m.bytes.length;
    return m;
  }
  async fetchBlob(repo: RepositoryRef, digest: string): Promise<FetchedBlob> {
    const blob = await this.inner.fetchBlob(repo, digest);
    // A listener beside the importer's pipe, not a stream of its own in the path: counting must
    // not slow what it measures. It is added when the importer starts reading ('resume' comes
    // before the first chunk), since a 'data' listener would otherwise start the flow itself.
    blob.stream.once('resume', () =>
      blob.stream.on('data', (chunk: Buffer) => {
        this.bytes += chunk.length;
      }),
    );
    return blob;
  }
}

/** CPU milliseconds (utime + stime) of each live thread of this process, for the trace. */
function cpuByThread(): Record<string, number> {
  const out: Record<string, number> = {};
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      // Every thread is called node: the main one is told by its id, the others by their ids.
      const name = tid === String(process.pid) ? 'main' : `thread ${tid}`;
      const fields = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      out[name] = (out[name] ?? 0) + (Number(fields[11]) + Number(fields[12])) * 10;
    } catch {
      // The thread ended meanwhile.
    }
  }
  return out;
}

const peakRssKb = (): number => Number(/^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN);

async function main(): Promise<void> {
  const [stateDir, registryHost, mode, ...refs] = process.argv.slice(2);
  const [scanMode, ...extras] = (mode ?? '').split('+');
  const costs = extras.includes('costs');
  const toGlance = extras.includes('glance');
  const hashFirst = extras.includes('hashfirst');
  if (
    !stateDir ||
    !registryHost ||
    !['scan', 'noscan'].includes(scanMode!) ||
    extras.some((e) => !['costs', 'glance', 'hashfirst'].includes(e)) ||
    !refs.length
  ) {
    throw new Error('usage: import-child STATE_DIR REGISTRY scan|noscan[+costs][+glance][+hashfirst] REF...');
  }
  const target = toGlance ? (JSON.parse(process.env.BENCH_GLANCE ?? 'null') as { url: string; keystone: KeystoneCredentials } | null) : null;
  if (toGlance && !target) throw new Error('+glance needs BENCH_GLANCE');
  // Loaded only for +glance, so that the idle RSS of the other modes stays what it was.
  const glance: ImageService | null = target
    ? (await import('../../../glance-bridge/client/http.js')).createImageClient({ url: target.url, keystone: target.keystone, requestTimeoutMs: 600_000 })
    : null;

  const trace = Boolean(process.env.BENCH_IMPORT_TRACE);
  const db = openDatabase(`sqlite://${join(stateDir, 'images.sqlite')}`);
  await tuneSqlite(db);
  await migrate(db, MIGRATIONS_TABLE, migrations);
  const images = new ImageRepository(db);
  const blobs = new BlobStore(join(stateDir, 'blobs'), process.env.BENCH_INLINE_SHA256 ? { hasher: null } : {});
  await blobs.init();
  const registry = new ByteCountingClient(
    new HttpRegistryClient({
      insecureHosts: [registryHost],
      allowedInternal: [registryHost],
      timeoutMs: 60_000,
      maxManifestBytes: 4 * 1024 * 1024,
      maxBlobBytes: 10 * 1024 ** 3,
    }),
  );
  const importer = new Importer({
    images,
    blobs,
    registry,
    // BENCH_IMPORT_TRACE=1: the import's per-stage timeline (debug lines, fetch-image.ts) and the
    // CPU time of each of the process's threads on stderr.
    log: trace ? createLogger('import-child', { debug: true, destination: 2 }) : silentLogger(),
    options: {
      defaultProject: 'bench',
      platform: { os: 'linux', architecture: 'amd64' },
      maxParallelLayers: 4,
      maxBlobBytes: 10 * 1024 ** 3,
      ...(scanMode === 'noscan' ? { scan: false as const } : {}),
      // The service's default (`[image_store] active_before_hashes`), unless +hashfirst.
      activeBeforeHashes: !hashFirst,
    },
  });
  process.stdout.write(`${JSON.stringify({ idleHwmKb: peakRssKb() })}\n`);
  for (const ref of refs) {
    const before = registry.bytes;
    const threadsBefore = trace ? cpuByThread() : {};
    const processBefore = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const image = await importer.importImage(ref);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    // Until Glance's hashes are recorded (the same instant as active with +hashfirst).
    await importer.hashes.settle(image.id);
    const hashesMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const used = process.cpuUsage(processBefore);
    // CPU time of the whole import (every thread, the ended hashing workers included).
    const cpuMs = (used.user + used.system) / 1000;
    if (trace) {
      // The hashing workers have ended by now: what the process used beyond its live threads is theirs.
      const threads = Object.fromEntries(Object.entries(cpuByThread()).map(([k, v]) => [k, v - (threadsBefore[k] ?? 0)]));
      threads['(ended threads)'] = cpuMs - Object.values(threads).reduce((a, b) => a + b, 0);
      process.stderr.write(`${JSON.stringify({ ref, processMs: cpuMs, threadCpuMs: threads })}\n`);
    }
    const hwmKb = peakRssKb();
    let exportMs: number | undefined;
    if (glance) {
      const t1 = process.hrtime.bigint();
      const { exportImage } = await import('../../../glance-bridge/archive/export.js');
      const remote = await exportImage({ images, blobs, log: silentLogger(), hashes: importer.hashes }, glance, image.id, {
        visibility: 'private',
        name: `berth-bench-${image.id}`,
      });
      exportMs = Number(process.hrtime.bigint() - t1) / 1e6;
      await glance.deleteImage(remote.id);
    }
    const required = costs ? await requiredCpu(blobs, (await images.blobsOf(image.id))!) : undefined;
    process.stdout.write(
      `${JSON.stringify({ ref, ms, hashesMs, cpuMs, exportMs, bytesFetched: registry.bytes - before, size: (await images.require(image.id)).size, hwmKb, required })}\n`,
    );
  }
  await db.close();
}

main().catch((err: unknown) => {
  process.stderr.write(`import-child: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
