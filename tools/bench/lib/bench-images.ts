import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, linkSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { promisify } from 'node:util';

/**
 * Images for the import benchmark: random (incompressible) files, one `COPY` layer each, built
 * with the system docker CLI from a generated context and pushed to the loopback registry; and
 * their removal again, from dockerd and from the registry's storage.
 */
export const DOCKER_CLI = '/usr/bin/docker';
const run = promisify(execFile);
const MB = 1024 * 1024;

async function writeRandomFile(path: string, mb: number): Promise<void> {
  const out = createWriteStream(path);
  for (let i = 0; i < mb; i++) if (!out.write(randomBytes(MB))) await once(out, 'drain');
  out.end();
  await once(out, 'finish');
}

/**
 * A build context whose Dockerfile copies each file into its own layer. `shared` files (paths
 * in another context) are hard-linked, so both images get byte-identical layers.
 */
export async function writeContext(dir: string, layers: ({ mb: number } | { shared: string })[]): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const lines = ['FROM scratch'];
  const paths: string[] = [];
  for (const [i, layer] of layers.entries()) {
    const path = join(dir, `layer${i}.bin`);
    if ('shared' in layer) linkSync(layer.shared, path);
    else await writeRandomFile(path, layer.mb);
    lines.push(`COPY layer${i}.bin /data/layer${i}.bin`);
    paths.push(path);
  }
  writeFileSync(join(dir, 'Dockerfile'), `${lines.join('\n')}\n`);
  return paths;
}

export async function buildAndPush(contextDir: string, tag: string): Promise<void> {
  await run(DOCKER_CLI, ['build', '-q', '-t', tag, contextDir], { timeout: 15 * 60_000, maxBuffer: 16 * MB });
  await run(DOCKER_CLI, ['push', tag], { timeout: 15 * 60_000, maxBuffer: 16 * MB });
}

export async function dockerRmi(tag: string): Promise<void> {
  await run(DOCKER_CLI, ['rmi', '-f', tag], { timeout: 120_000 }).catch(() => undefined);
}

export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

interface Manifest {
  config: { digest: string; size: number };
  layers: { digest: string; size: number }[];
}

export async function fetchManifest(registry: string, repo: string, tag: string): Promise<{ manifest: Manifest; digest: string; bytes: number }> {
  const res = await fetch(`http://${registry}/v2/${repo}/manifests/${tag}`, { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
  if (res.status !== 200) throw new Error(`manifest ${repo}:${tag}: HTTP ${res.status}`);
  const body = Buffer.from(await res.arrayBuffer());
  return { manifest: JSON.parse(body.toString('utf8')) as Manifest, digest: res.headers.get('docker-content-digest')!, bytes: body.length };
}

/**
 * Deletes the pushed tags' manifests and blobs through the registry API, then the blob files and
 * the repository folder from the registry's storage: the API only unlinks, and a registry
 * garbage-collect run would race other users pushing meanwhile. Every blob of the repository was
 * made from random data in this run, so no other repository shares it.
 */
export async function removeFromRegistry(registry: string, repo: string, tags: string[], storageRoot: string | null): Promise<void> {
  const digests = new Set<string>();
  for (const tag of tags) {
    const found = await fetchManifest(registry, repo, tag).catch(() => null);
    if (!found) continue;
    for (const d of [found.manifest.config, ...found.manifest.layers]) digests.add(d.digest);
    await fetch(`http://${registry}/v2/${repo}/manifests/${found.digest}`, { method: 'DELETE' });
    digests.add(found.digest);
  }
  for (const digest of digests) await fetch(`http://${registry}/v2/${repo}/blobs/${digest}`, { method: 'DELETE' }).catch(() => undefined);
  if (!storageRoot) return;
  const v2 = join(storageRoot, 'docker', 'registry', 'v2');
  for (const digest of digests) {
    const hex = digest.slice('sha256:'.length);
    rmSync(join(v2, 'blobs', 'sha256', hex.slice(0, 2), hex), { recursive: true, force: true });
  }
  const repoDir = join(v2, 'repositories', ...repo.split('/'));
  if (existsSync(repoDir)) rmSync(repoDir, { recursive: true, force: true });
}
