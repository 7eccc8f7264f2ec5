import { createServer } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { openDatabase, prepareSchema, tuneSqlite } from '../common/db.js';
import { listen, parseListen } from '../common/listen.js';
import type { Logger } from '../common/log.js';
import type { Config } from '../conf/index.js';
import { isMain, runService, serviceLogger } from '../conf/service-main.js';
import { createApp, createImageServiceMetrics, measureImports } from './app.js';
import { randomUUID } from 'node:crypto';
import { unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { collectUnreferencedBlobs } from './gc.js';
import { Importer } from './import/importer.js';
import { loadCredentials } from '../common/registry-credentials.js';
import { DownloadSlots } from './api/web-download.js';
import { DestinationGuard } from './registry/destination.js';
import { DEFAULT_RETRY, HttpRegistryClient } from './registry/http.js';
import { parsePlatform } from './registry/manifest.js';
import { startRegistryEndpoint, type RegistryEndpoint } from './registry-endpoint/listener.js';
import type { RegistryClient } from './registry/types.js';
import { BlobStore } from './store/blobs.js';
import { MetadefCatalog } from './metadefs/catalog.js';
import { ImageRepository } from './store/images.js';
import { MIGRATIONS_TABLE, migrations } from './store/migrations.js';
import { ImageUploader } from './import/upload.js';
import { HASH_IN_WORKERS_FROM } from './import/fetch-image.js';
import { exportTargetOf, incomingAuth } from './keystone-setup.js';

export interface ImageServiceHandle {
  url: string;
  importer: Importer;
  /** The read-only Registry v2 endpoint hosts pull from (null when not configured). */
  registryEndpoint: RegistryEndpoint | null;
  /** Removes blobs no image refers to; returns their digests. */
  collectGarbage(): Promise<string[]>;
  close(): Promise<void>;
}

export interface ImageServiceOverrides {
  log?: Logger;
  registry?: RegistryClient;
}

/** Opens the store, marks imports a previous run left unfinished as killed, and listens. */
export async function startImageService(config: Config, overrides: ImageServiceOverrides = {}): Promise<ImageServiceHandle> {
  const log = overrides.log ?? serviceLogger('berth-images', config);
  const auth = incomingAuth(config);
  const exportTarget = exportTargetOf(config);
  const db = openDatabase(config.image_store.connection);
  await tuneSqlite(db);
  await prepareSchema(db, MIGRATIONS_TABLE, migrations, { autoSync: config.DEFAULT.db_auto_sync });
  const images = new ImageRepository(db);
  const blobs = new BlobStore(config.image_store.blob_path);
  await blobs.init();
  const reg = config.registry;
  const registry =
    overrides.registry ??
    new HttpRegistryClient({
      insecureHosts: [...reg.insecure_hosts],
      credentials: loadCredentials({ file: reg.credentials_file, legacy: { host: reg.credentials_host, username: reg.username, password: reg.password } }),
      allowedInternal: reg.allowed_internal,
      timeoutMs: reg.request_timeout * 1000,
      maxManifestBytes: reg.max_manifest_bytes,
      maxBlobBytes: reg.max_layer_bytes,
      retry: { ...DEFAULT_RETRY, retries: reg.retries, baseDelayMs: reg.retry_delay_ms },
    });
  const quotas = { maxImages: config.image_store.max_images_per_project, maxBytes: config.image_store.max_bytes_per_project };
  const importer = new Importer({
    images,
    blobs,
    registry,
    log,
    options: {
      defaultProject: config.image_store.default_project,
      platform: parsePlatform(reg.platform),
      maxParallelLayers: reg.max_parallel_layers,
      maxBlobBytes: reg.max_layer_bytes,
      maxLayers: reg.max_layers,
      maxImageBytes: reg.max_image_bytes,
      scan: { maxUncompressedBytes: reg.max_uncompressed_bytes, maxRatio: reg.max_uncompressed_ratio },
      quotas,
      maxConcurrentImports: config.image_store.max_concurrent_imports,
      maxConcurrentImportsPerProject: config.image_store.max_concurrent_imports_per_project,
      activeBeforeHashes: config.image_store.active_before_hashes,
    },
  });
  const interrupted = await importer.recoverInterrupted();
  if (interrupted) log.warn({ count: interrupted }, 'imports interrupted by the last shutdown marked killed');
  const unhashed = await importer.hashes.recover();
  if (unhashed) log.info({ count: unhashed }, 'hashing active images whose hashes the last shutdown left unknown');

  const uploader = new ImageUploader({
    images,
    blobs,
    log,
    maxImageBytes: config.image_store.max_image_bytes,
    // Large uploads (snapshots) turn active before their md5 and sha512 as large imports do.
    ...(config.image_store.active_before_hashes ? { deferHashes: { hashes: importer.hashes, from: HASH_IN_WORKERS_FROM } } : {}),
  });
  const metrics = createImageServiceMetrics();
  measureImports(importer, metrics);
  const readiness = [
    {
      name: 'database',
      probe: async () => {
        await db.query('SELECT 1');
      },
    },
    { name: 'blob_store', probe: () => probeWritable(blobs.root) },
  ];
  const metadefs = config.image_store.metadefs_path ? MetadefCatalog.loadDir(config.image_store.metadefs_path, config.image_store.default_project) : undefined;
  const app = createApp({
    images,
    blobs,
    importer,
    uploader,
    log,
    maxBodyBytes: config.image_store.max_body_bytes,
    defaultProject: config.image_store.default_project,
    metrics,
    readiness,
    quotas,
    propertyQuota: config.image_store.image_property_quota,
    ...(metadefs ? { metadefs } : {}),
    ...(auth ? { auth } : {}),
    ...(exportTarget ? { exportTarget } : {}),
    // web-download of http(s):// URLs: the registry imports' destination checks, timeouts and limits.
    ...(config.image_store.web_download_urls
      ? {
          web: {
            guard: new DestinationGuard(reg.allowed_internal),
            timeoutMs: reg.request_timeout * 1000,
            insecureHosts: [...reg.insecure_hosts],
            slots: new DownloadSlots(config.image_store.max_concurrent_imports, config.image_store.max_concurrent_imports_per_project),
          },
        }
      : {}),
  });
  const registryEndpoint = await startRegistryEndpoint(config, { images, blobs, log, ...(auth ? { validator: auth.validator } : {}) });
  const server = createServer(app.callback());
  const url = await listen(server, parseListen(config.image_store.listen));
  log.info({ url, blob_path: blobs.root }, 'berth-images listening');
  let closing: Promise<void> | undefined;
  return {
    url,
    importer,
    registryEndpoint,
    collectGarbage: () => collectUnreferencedBlobs({ images, blobs, importer, uploader }),
    close: () => {
      closing ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await registryEndpoint?.close();
        // Long imports are not waited for: the next start marks them killed (recoverInterrupted).
        await Promise.race([importer.drain(), delay(5000)]);
        await importer.hashes.stop();
        await blobs.close();
        await db.close();
      })();
      return closing;
    },
  };
}

/** Writable means a file can be made and removed there, which also catches a read-only mount. */
async function probeWritable(dir: string): Promise<void> {
  const file = join(dir, `.readyz-${randomUUID()}`);
  await writeFile(file, '');
  await unlink(file);
}

if (isMain(import.meta.url)) {
  runService('berth-images', async (config, log) => {
    const service = await startImageService(config, { log });
    return { stop: () => service.close() };
  });
}
