/**
 * Agent image fetch (issue 4, benchmark b): PUT /v1/images/{id} — the agent downloads the image's
 * docker-archive from the image store and streams it into `docker load` — against `docker pull`
 * of the same image from the loopback registry, in the same run. The image is built here from
 * random (incompressible) data, four layers of 25 MB, pushed to the registry, imported into the
 * store (not timed), and removed from dockerd before every timed fetch; everything is removed at
 * the end. The verdict is Berth's throughput over docker pull's at the median (higher is better).
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseEndpoint, requestJson } from '../../common/http-client.js';
import { DOCKER, REGISTRY } from '../lib/stack.js';
import { startAgentNode } from './lib/agent-node.js';
import { buildAndPush, DOCKER_CLI, dockerRmi, removeFromRegistry, timed, writeContext } from './lib/bench-images.js';
import { printTable, summarize } from './lib/report.js';
import { runBench } from './lib/run.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const LAYERS = [{ mb: 25 }, { mb: 25 }, { mb: 25 }, { mb: 25 }];
const TARGET = 1.0;
const REGISTRY_STORAGE = join(process.env.BERTH_DEV_DIR ?? '/var/lib/berth-dev', 'registry');
const run = promisify(execFile);

async function removeImage(id: string): Promise<void> {
  await requestJson(DOCKER, { method: 'DELETE', path: `/v1.41/images/${encodeURIComponent(id)}?force=1`, accept: [404, 409] }, 'dockerd');
}

runBench('agent-image-fetch', 20 * 60_000, async (b) => {
  const runId = randomUUID().slice(0, 8);
  const repo = `berth/bench-agent-fetch-${runId}`;
  const tag = `${REGISTRY}/${repo}:latest`;
  const context = mkdtempSync(join(tmpdir(), 'berth-bench-fetch-'));
  b.cleanup(async () => rmSync(context, { recursive: true, force: true }));
  b.cleanup(() => removeFromRegistry(REGISTRY, repo, ['latest'], existsSync(REGISTRY_STORAGE) ? REGISTRY_STORAGE : null));
  b.cleanup(() => dockerRmi(tag));
  b.log(`building ${LAYERS.length} random layers of ${LAYERS[0]!.mb} MB and pushing ${tag}`);
  await writeContext(context, LAYERS);
  await buildAndPush(context, tag);
  await dockerRmi(tag);

  const node = await startAgentNode();
  b.cleanup(() => node.stop());
  const image = await node.importImage(`docker://${tag}`);
  const imageId = String(image.docker_image_id);
  b.cleanup(() => removeImage(imageId));
  const agent = parseEndpoint(node.url);

  const viaAgent = async (): Promise<number> => {
    await removeImage(imageId);
    const ms = await timed(() => requestJson(agent, { method: 'PUT', path: `/v1/images/${image.id}`, headers: { authorization: `Bearer ${node.token}` }, timeoutMs: 600_000 }, 'berth-agent'));
    return ms;
  };
  const viaPull = async (): Promise<number> => {
    await removeImage(imageId);
    return timed(() => run(DOCKER_CLI, ['pull', '-q', tag], { timeout: 600_000 }));
  };

  const agentMs: number[] = [];
  const pullMs: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    agentMs.push(await viaAgent());
    pullMs.push(await viaPull());
    b.log(`round ${i + 1}/${ROUNDS}: agent ${agentMs.at(-1)!.toFixed(0)} ms, docker pull ${pullMs.at(-1)!.toFixed(0)} ms`);
  }
  const size = (await requestJson<{ Size: number }>(DOCKER, { path: `/v1.41/images/${encodeURIComponent(imageId)}/json` }, 'dockerd')).body.Size;
  const mbps = (ms: number): number => size / 1e6 / (ms / 1000);
  const a = summarize(agentMs);
  const p = summarize(pullMs);
  printTable(`image fetch into dockerd, ${(size / 1e6).toFixed(0)} MB image (${LAYERS.length} random layers), ${ROUNDS} rounds each`, [
    { path: 'agent: PUT /v1/images/{id} (store → docker load)', n: a.n, 'median ms': a.median, 'min ms': a.min, 'max ms': a.max, 'MB/s at median': mbps(a.median) },
    { path: 'docker pull from the loopback registry', n: p.n, 'median ms': p.median, 'min ms': p.min, 'max ms': p.max, 'MB/s at median': mbps(p.median) },
  ]);
  const ratio = mbps(a.median) / mbps(p.median);
  const pass = Number.isFinite(ratio) && ratio >= TARGET;
  process.stdout.write(`\nRESULT agent-image-fetch throughput_ratio=${ratio.toFixed(2)} target>=${TARGET.toFixed(2)} ${pass ? 'PASS' : 'FAIL'}\n`);
  return pass;
});
