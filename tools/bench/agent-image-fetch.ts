/**
 * Agent image fetch (issue 4, benchmark b): PUT /v1/images/{id} — with [agent] image_registry the
 * agent has dockerd pull the image from the image service's registry endpoint; without, it streams
 * the store's docker-archive into `docker load` (both are measured) — against `docker pull` of
 * the same image from the loopback registry, in the same run. The image is built here from
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
import { startAgentNode, type AgentNode } from './lib/agent-node.js';
import { buildAndPush, DOCKER_CLI, dockerRmi, removeFromRegistry, timed, writeContext } from './lib/bench-images.js';
import { printTable, summarize } from './lib/report.js';
import { runBench } from './lib/run.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
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

  // Two agents on the same dockerd: one pulls through its image service's registry endpoint
  // ([agent] image_registry, the verdict), one streams the archive into docker load (shown too).
  const node = await startAgentNode();
  b.cleanup(() => node.stop());
  const loadNode = await startAgentNode({ image_registry: '' });
  b.cleanup(() => loadNode.stop());
  const image = await node.importImage(`docker://${tag}`);
  const loadImage = await loadNode.importImage(`docker://${tag}`);
  const imageId = String(image.docker_image_id);
  b.cleanup(() => removeImage(imageId));

  const viaAgent = (n: AgentNode, glanceId: string) => async (): Promise<number> => {
    await removeImage(imageId);
    return timed(() =>
      requestJson(
        parseEndpoint(n.url),
        { method: 'PUT', path: `/v1/images/${glanceId}`, headers: { authorization: `Bearer ${n.token}` }, timeoutMs: 600_000 },
        'berth-agent',
      ),
    );
  };
  const viaPull = async (): Promise<number> => {
    await removeImage(imageId);
    return timed(() => run(DOCKER_CLI, ['pull', '-q', tag], { timeout: 600_000 }));
  };
  const contenders = [
    { path: "agent: PUT /v1/images/{id} (dockerd pulls from the store's registry endpoint)", fetch: viaAgent(node, image.id), ms: [] as number[] },
    { path: 'agent without image_registry (store archive → docker load)', fetch: viaAgent(loadNode, loadImage.id), ms: [] as number[] },
    { path: 'docker pull from the loopback registry', fetch: viaPull, ms: [] as number[] },
  ];
  for (let i = 0; i < ROUNDS; i++) {
    for (const c of contenders) c.ms.push(await c.fetch());
    b.log(`round ${i + 1}/${ROUNDS}: ${contenders.map((c) => `${c.ms.at(-1)!.toFixed(0)} ms`).join(', ')}`);
  }
  const size = (await requestJson<{ Size: number }>(DOCKER, { path: `/v1.41/images/${encodeURIComponent(imageId)}/json` }, 'dockerd')).body.Size;
  const mbps = (ms: number): number => size / 1e6 / (ms / 1000);
  const rows = contenders.map((c) => ({ c, s: summarize(c.ms) }));
  printTable(
    `image fetch into dockerd, ${(size / 1e6).toFixed(0)} MB image (${LAYERS.length} random layers), ${ROUNDS} rounds each`,
    rows.map(({ c, s }) => ({ path: c.path, n: s.n, 'median ms': s.median, 'min ms': s.min, 'max ms': s.max, 'MB/s at median': mbps(s.median) })),
  );
  const a = rows[0]!.s;
  const p = rows[2]!.s;
  const ratio = mbps(a.median) / mbps(p.median);
  const pass = Number.isFinite(ratio) && ratio >= TARGET;
  process.stdout.write(`\nRESULT agent-image-fetch throughput_ratio=${ratio.toFixed(2)} target>=${TARGET.toFixed(2)} ${pass ? 'PASS' : 'FAIL'}\n`);
  return pass;
});
