/**
 * One importer in its own process, for the import benchmark: a fresh store under the given state
 * directory, the real registry client, and the bridge's Importer, so its memory and event loop
 * are its own. Imports the references given, one after the other, and prints one JSON line each:
 * wall time, bytes the registry client received, and the process's peak RSS so far. With
 * `+costs`, also what each computation every import must make costs over that image
 * (import-floor.ts), measured after the import and its peak RSS.
 *
 * argv: STATE_DIR REGISTRY(HOST:PORT) scan|noscan[+costs] REF...
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { migrate, openDatabase, tuneSqlite } from '../../../common/db.js';
import { silentLogger } from '../../../common/log.js';
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

const peakRssKb = (): number => Number(/^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN);

async function main(): Promise<void> {
  const [stateDir, registryHost, mode, ...refs] = process.argv.slice(2);
  const [scanMode, costs] = (mode ?? '').split('+');
  if (!stateDir || !registryHost || !['scan', 'noscan'].includes(scanMode!) || ![undefined, 'costs'].includes(costs) || !refs.length) {
    throw new Error('usage: import-child STATE_DIR REGISTRY scan|noscan[+costs] REF...');
  }
  const db = openDatabase(`sqlite://${join(stateDir, 'images.sqlite')}`);
  await tuneSqlite(db);
  await migrate(db, MIGRATIONS_TABLE, migrations);
  const images = new ImageRepository(db);
  const blobs = new BlobStore(join(stateDir, 'blobs'));
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
    log: silentLogger(),
    options: {
      defaultProject: 'bench',
      platform: { os: 'linux', architecture: 'amd64' },
      maxParallelLayers: 4,
      maxBlobBytes: 10 * 1024 ** 3,
      ...(scanMode === 'noscan' ? { scan: false as const } : {}),
    },
  });
  process.stdout.write(`${JSON.stringify({ idleHwmKb: peakRssKb() })}\n`);
  for (const ref of refs) {
    const before = registry.bytes;
    const t0 = process.hrtime.bigint();
    const image = await importer.importImage(ref);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const hwmKb = peakRssKb();
    const required = costs ? await requiredCpu(blobs, (await images.blobsOf(image.id))!) : undefined;
    process.stdout.write(`${JSON.stringify({ ref, ms, bytesFetched: registry.bytes - before, size: image.size, hwmKb, required })}\n`);
  }
  await db.close();
}

main().catch((err: unknown) => {
  process.stderr.write(`import-child: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
