import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Readable } from 'node:stream';
import { parseEndpoint, readBody, requestRaw } from '../../../common/http-client.js';
import { silentLogger } from '../../../common/log.js';
import { loadConfig } from '../../../conf/index.js';
import { HttpRegistryClient } from '../../../glance-bridge/registry/http.js';
import type { FetchedBlob, RegistryClient, RepositoryRef } from '../../../glance-bridge/registry/types.js';
import { startImageService, type ImageServiceHandle } from '../../../glance-bridge/main.js';
import type { BuiltImage } from '../../fakes/image-builder.js';
import { STOCK_PYTHON } from '../../support/python.js';

export const REGISTRY = process.env.BERTH_TEST_REGISTRY ?? '127.0.0.1:5000';
export const BUSYBOX = `docker://${REGISTRY}/berth/busybox:latest`;
export const DOCKER = parseEndpoint(process.env.BERTH_TEST_DOCKER_URL ?? 'unix:///var/run/docker.sock');

/** Counts blob fetches of the real client, so tests can prove an import fetched nothing. */
export class CountingRegistryClient implements RegistryClient {
  blobFetches = 0;
  constructor(private readonly inner: RegistryClient) {}
  ping(registry: string) {
    return this.inner.ping(registry);
  }
  fetchManifest(repo: RepositoryRef, reference: string) {
    return this.inner.fetchManifest(repo, reference);
  }
  fetchBlob(repo: RepositoryRef, digest: string): Promise<FetchedBlob> {
    this.blobFetches++;
    return this.inner.fetchBlob(repo, digest);
  }
}

export function realRegistryClient(): HttpRegistryClient {
  return new HttpRegistryClient({
    insecureHosts: [REGISTRY],
    allowedInternal: [REGISTRY],
    timeoutMs: 30_000,
    maxManifestBytes: 4 * 1024 * 1024,
    maxBlobBytes: 1024 * 1024 * 1024,
  });
}

/** The image service on a temp state directory and a free port; `imageStore`: more `[image_store]` options. */
export async function startTestService(
  registry: RegistryClient,
  imageStore: Record<string, unknown> = {},
): Promise<{ service: ImageServiceHandle; cleanup(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-images-it-'));
  const config = loadConfig({
    env: {},
    overrides: {
      DEFAULT: { state_path: dir },
      image_store: { listen: '127.0.0.1:0', ...imageStore },
      registry: { insecure_hosts: [REGISTRY], allowed_internal: [REGISTRY] },
    },
  });
  const service = await startImageService(config, { log: silentLogger(), registry });
  return {
    service,
    async cleanup() {
      await service.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Pushes a built image to the real registry with the monolithic upload of the distribution spec. */
export async function pushImage(repository: string, tag: string, image: BuiltImage): Promise<void> {
  const base = `http://${REGISTRY}/v2/${repository}`;
  for (const blob of [image.config, ...image.layers]) {
    const start = await fetch(`${base}/blobs/uploads/`, { method: 'POST' });
    if (start.status !== 202) throw new Error(`upload start: HTTP ${start.status}`);
    const location = new URL(start.headers.get('location')!, `http://${REGISTRY}`);
    location.searchParams.set('digest', blob.descriptor.digest);
    const put = await fetch(location, { method: 'PUT', body: new Uint8Array(blob.bytes), headers: { 'content-type': 'application/octet-stream' } });
    if (put.status !== 201) throw new Error(`blob upload: HTTP ${put.status} ${await put.text()}`);
  }
  const res = await fetch(`${base}/manifests/${tag}`, { method: 'PUT', body: new Uint8Array(image.manifest), headers: { 'content-type': image.mediaType } });
  if (res.status !== 201) throw new Error(`manifest push: HTTP ${res.status} ${await res.text()}`);
}

/** Removes a pushed manifest again (the dev registry runs with deletes enabled). */
export async function deleteManifest(repository: string, digest: string): Promise<void> {
  await fetch(`http://${REGISTRY}/v2/${repository}/manifests/${digest}`, { method: 'DELETE' });
}

/** `docker load` over the Engine API; returns the image id dockerd reports. */
export async function dockerLoad(archive: NodeJS.ReadableStream): Promise<string> {
  const stream = archive instanceof Readable ? archive : Readable.from(archive);
  const res = await requestRaw(
    DOCKER,
    { method: 'POST', path: '/v1.41/images/load', stream, headers: { 'content-type': 'application/x-tar' }, timeoutMs: 120_000 },
    'docker',
  );
  const text = (await readBody(res.body)).toString('utf8');
  if (res.status !== 200) throw new Error(`docker load: HTTP ${res.status} ${text}`);
  const id = /Loaded image ID: (sha256:[0-9a-f]{64})/.exec(text)?.[1];
  if (!id) throw new Error(`docker load did not report an image id: ${text}`);
  return id;
}

export async function dockerRemoveImage(id: string): Promise<void> {
  const res = await requestRaw(DOCKER, { method: 'DELETE', path: `/v1.41/images/${id}?force=1`, timeoutMs: 60_000 }, 'docker');
  res.body.resume();
}

export async function dockerHasImage(id: string): Promise<boolean> {
  const res = await requestRaw(DOCKER, { path: `/v1.41/images/${id}/json` }, 'docker');
  res.body.resume();
  return res.status === 200;
}

const HELPER = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'support', 'glance_client.py');

export type Result = Record<string, any>;

/** Runs test/support/glance_client.py with Debian's python3 (and so Debian's glanceclient). */
export function runGlanceClient(job: Record<string, unknown>, limitMs = 60_000): Promise<Result[]> {
  const env: NodeJS.ProcessEnv = { ...process.env, PYTHONNOUSERSITE: '1', PYTHONDONTWRITEBYTECODE: '1' };
  for (const k of ['PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV', 'http_proxy', 'HTTP_PROXY', 'no_proxy', 'NO_PROXY']) delete env[k];
  const child = spawn(STOCK_PYTHON, [HELPER], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    out += c;
  });
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    err = (err + c).slice(-8000);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  child.stdin.end(JSON.stringify(job));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').at(-1) ?? '';
      try {
        if (code !== 0) throw new Error(`exit ${code}`);
        resolve((JSON.parse(last) as { results: Result[] }).results);
      } catch (e) {
        reject(new Error(`glance_client.py failed (${(e as Error).message})\nstdout: ${out.slice(-2000)}\nstderr: ${err}`));
      }
    });
  });
}
