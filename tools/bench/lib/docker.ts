import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readBody, requestJson, requestRaw } from '../../../common/http-client.js';
import { DOCKER } from '../../lib/stack.js';

/**
 * The baselines: containers made straight through the Docker Engine API or the docker CLI,
 * each carrying the run's bench label so that clean-up finds every one of them.
 */
export const BENCH_LABEL = 'org.openstack.berth.bench';
export const PROJECT_LABEL = 'org.openstack.berth.project';
const API = '/v1.41';
const DOCKER_CLI = '/usr/bin/docker';
const run = promisify(execFile);

export interface RawContainerSpec {
  imageId: string;
  memoryMb: number;
  runId: string;
  /** A user-defined bridge network and the static address to take on it (the way Berth attaches). */
  network?: { name: string; ipv4: string };
}

/** POST /containers/create then /start, with the memory limit Berth's flavor would give. */
export async function rawCreateStart(spec: RawContainerSpec): Promise<string> {
  const memory = spec.memoryMb * 1024 * 1024;
  const created = await requestJson<{ Id: string }>(
    DOCKER,
    {
      method: 'POST',
      path: `${API}/containers/create`,
      body: {
        Image: spec.imageId,
        Labels: { [BENCH_LABEL]: spec.runId },
        HostConfig: { Memory: memory, MemorySwap: memory, ...(spec.network ? { NetworkMode: spec.network.name } : {}) },
        ...(spec.network ? { NetworkingConfig: { EndpointsConfig: { [spec.network.name]: { IPAMConfig: { IPv4Address: spec.network.ipv4 } } } } } : {}),
      },
    },
    'dockerd',
  );
  await requestJson(DOCKER, { method: 'POST', path: `${API}/containers/${created.body.Id}/start` }, 'dockerd');
  return created.body.Id;
}

/** `docker run -d` through the CLI, the way an operator would start the same image by hand. */
export async function cliRun(spec: RawContainerSpec): Promise<string> {
  const { stdout } = await run(
    DOCKER_CLI,
    [
      '-H',
      'unix:///var/run/docker.sock',
      'run',
      '-d',
      '--memory',
      `${spec.memoryMb}m`,
      '--memory-swap',
      `${spec.memoryMb}m`,
      '--label',
      `${BENCH_LABEL}=${spec.runId}`,
      spec.imageId,
    ],
    { timeout: 60_000 },
  );
  return stdout.trim();
}

/** Pulls `repo:tag` into dockerd (from the loopback registry, which dockerd trusts without TLS). */
export async function pullImage(repo: string, tag: string): Promise<string> {
  const q = `fromImage=${encodeURIComponent(repo)}&tag=${encodeURIComponent(tag)}`;
  const res = await requestRaw(DOCKER, { method: 'POST', path: `${API}/images/create?${q}`, timeoutMs: 120_000 }, 'dockerd');
  // dockerd streams the pull's progress and closes the stream when the pull is over.
  const progress = (await readBody(res.body)).toString('utf8');
  if (res.status >= 300 || progress.includes('"error"')) throw new Error(`docker pull ${repo}:${tag} failed: ${res.status} ${progress.slice(-300)}`);
  const img = await requestJson<{ Id: string }>(DOCKER, { path: `${API}/images/${encodeURIComponent(`${repo}:${tag}`)}/json` }, 'dockerd');
  return img.body.Id;
}

/**
 * A bridge network labelled for the run, on the first free /24 of 172.29.0.0/16 (dockerd answers
 * 403 for a subnet another network holds); returns its name and the subnet's first three octets.
 */
export async function createBridgeNetwork(name: string, runId: string): Promise<{ name: string; prefix: string }> {
  for (let k = 0; k < 256; k++) {
    const prefix = `172.29.${k}`;
    const res = await requestJson(
      DOCKER,
      {
        method: 'POST',
        path: `${API}/networks/create`,
        accept: [403],
        body: {
          Name: name,
          CheckDuplicate: true,
          Driver: 'bridge',
          IPAM: { Driver: 'default', Config: [{ Subnet: `${prefix}.0/24`, Gateway: `${prefix}.1` }] },
          Labels: { [BENCH_LABEL]: runId },
        },
      },
      'dockerd',
    );
    if (res.status < 300) return { name, prefix };
  }
  throw new Error('no free /24 in 172.29.0.0/16 for a benchmark network');
}

export async function removeContainer(id: string): Promise<void> {
  await requestJson(DOCKER, { method: 'DELETE', path: `${API}/containers/${id}?force=1`, accept: [404, 409] }, 'dockerd');
}

async function containersLabelled(label: string): Promise<string[]> {
  const filters = encodeURIComponent(JSON.stringify({ label: [label] }));
  const res = await requestJson<Array<{ Id: string }>>(DOCKER, { path: `${API}/containers/json?all=1&filters=${filters}` }, 'dockerd');
  return res.body.map((c) => c.Id);
}

/**
 * Removes every container labelled `<key>=<value>` (at most `limit` passes, since a build still
 * finishing can add one after a listing) and every network with that label.
 */
export async function removeLabelled(key: string, value: string, limit = 5): Promise<number> {
  let removed = 0;
  for (let pass = 0; pass < limit; pass++) {
    const ids = await containersLabelled(`${key}=${value}`).catch(() => []);
    if (ids.length === 0) break;
    await runBounded(ids, 16, (id) => removeContainer(id).catch(() => undefined));
    removed += ids.length;
  }
  const filters = encodeURIComponent(JSON.stringify({ label: [`${key}=${value}`] }));
  const nets = await requestJson<Array<{ Id: string }>>(DOCKER, { path: `${API}/networks?filters=${filters}` }, 'dockerd').catch(() => ({ body: [] }));
  for (const n of nets.body) await requestJson(DOCKER, { method: 'DELETE', path: `${API}/networks/${n.Id}`, accept: [404, 409] }).catch(() => undefined);
  return removed;
}

/** Runs `fn` over `items` with at most `width` in flight. */
export async function runBounded<T, R>(items: readonly T[], width: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i]!, i);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
  return out;
}
