/**
 * Agent create+start (issue 4, benchmark a): PUT /v1/instances/{uuid} through the agent's HTTP
 * API, image on the host, against the same create+start sent straight to the Docker Engine API
 * (the body the agent would send: limits, hardening, project network with a fixed address,
 * read-only config-drive mount) in the same run. The baseline has dockerd attach the container
 * to the project network itself (`[docker] network_attach = engine`), the way a Docker user gets
 * the same result; the agent does as configured (by default it plugs the container in itself).
 * Rounds alternate the two, so background load falls on both alike.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { macFor } from '../../agent/network/ipv4.js';
import { projectNetworkName } from '../../agent/network/project-networks.js';
import { createBody } from '../../agent/runtime/docker-create-body.js';
import { requestJson } from '../../common/http-client.js';
import { DOCKER } from '../lib/stack.js';
import { benchInstance, startAgentNode } from './lib/agent-node.js';
import { BENCH_LABEL, PROJECT_LABEL, rawCreateStart, removeContainer, removeLabelled } from './lib/docker.js';
import { elapsedMs, printResult, printTable, summarize } from './lib/report.js';
import { runBench } from './lib/run.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 30);
const TARGET = 1.1;
const API = '/v1.41';

runBench('agent-create', 10 * 60_000, async (run) => {
  const runId = randomUUID().slice(0, 8);
  const project = `bench-${runId}`;
  run.cleanup(() => removeLabelled(PROJECT_LABEL, project));
  run.cleanup(() => removeLabelled(BENCH_LABEL, runId));
  const node = await startAgentNode();
  run.cleanup(() => node.stop());
  const image = await node.importImage('berth/busybox:latest');
  const spec = benchInstance(image.id, project);

  const viaAgent = async (): Promise<number> => {
    const uuid = randomUUID();
    const t0 = process.hrtime.bigint();
    await node.client.createInstance(uuid, spec);
    const ms = elapsedMs(t0);
    await node.client.deleteInstance(uuid, { timeout: 0 });
    return ms;
  };

  // The first create loads the image and makes the project network; not counted.
  run.log('warm-up');
  const warm = randomUUID();
  const first = await node.client.createInstance(warm, spec);
  const drive = join(node.statePath, 'bench-drive');
  mkdirSync(join(drive, 'openstack/latest'), { recursive: true });
  writeFileSync(join(drive, 'openstack/latest/meta_data.json'), '{}\n');
  // The baseline's address: the last of the subnet, far from those the agent hands out.
  const rawIp = first.ip_address!.replace(/\.\d+$/, '.250');
  const viaDocker = async (): Promise<number> => {
    const uuid = randomUUID();
    const body = createBody(
      {
        uuid,
        imageId: String(image.docker_image_id),
        glanceImageId: image.id,
        projectId: project,
        hostname: 'bench',
        flavor: spec.flavor,
        network: { name: projectNetworkName(project), ipv4: rawIp, macAddress: macFor(rawIp) },
        mounts: [{ source: drive, target: '/run/berth/config' }],
      },
      'no',
      `${node.host}-baseline`,
      'engine',
    );
    (body.Labels as Record<string, string>)[BENCH_LABEL] = runId;
    const t0 = process.hrtime.bigint();
    const created = await requestJson<{ Id: string }>(DOCKER, { method: 'POST', path: `${API}/containers/create?name=bench-raw-${uuid}`, body }, 'dockerd');
    await requestJson(DOCKER, { method: 'POST', path: `${API}/containers/${created.body.Id}/start` }, 'dockerd');
    const ms = elapsedMs(t0);
    await removeContainer(created.body.Id);
    return ms;
  };
  // For scale only: boot-latency's baseline, a bare container on Docker's default bridge.
  const viaDockerBare = async (): Promise<number> => {
    const t0 = process.hrtime.bigint();
    const id = await rawCreateStart({ imageId: String(image.docker_image_id), memoryMb: spec.flavor.memory_mb, runId });
    const ms = elapsedMs(t0);
    await removeContainer(id);
    return ms;
  };
  await viaDocker();
  await viaDockerBare();
  await node.client.deleteInstance(warm, { timeout: 0 });

  const agent: number[] = [];
  const raw: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    agent.push(await viaAgent());
    raw.push(await viaDocker());
    bare.push(await viaDockerBare());
    run.log(`round ${i + 1}/${ROUNDS}: agent ${agent.at(-1)!.toFixed(1)} ms, raw ${raw.at(-1)!.toFixed(1)} ms, bare ${bare.at(-1)!.toFixed(1)} ms`);
  }
  const a = summarize(agent);
  const r = summarize(raw);
  const d = summarize(bare);
  printTable(`create+start, ${ROUNDS} sequential each, busybox, 64 MB, project network, image on the host`, [
    { path: 'agent: PUT /v1/instances/{uuid}', n: a.n, 'median ms': a.median, 'p90 ms': a.p90, 'min ms': a.min, 'max ms': a.max },
    { path: 'raw: POST create + start, same body', n: r.n, 'median ms': r.median, 'p90 ms': r.p90, 'min ms': r.min, 'max ms': r.max },
    { path: 'for scale: bare container, default bridge', n: d.n, 'median ms': d.median, 'p90 ms': d.p90, 'min ms': d.min, 'max ms': d.max },
  ]);
  const ratio = a.median / r.median;
  process.stdout.write(`\nagent/raw at the median: ${ratio.toFixed(2)}x (${(a.median - r.median).toFixed(1)} ms added)\n`);
  return printResult('agent-create', [{ metric: 'ratio', value: ratio, target: TARGET }]);
});
