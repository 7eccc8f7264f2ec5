/**
 * Agent memory (issue 4, benchmark c): resident set of berth-agent, run as its own process,
 * holding 500 real containers (busybox test image, 16 MB memory limit each, spread over four
 * projects since one project subnet holds 253 addresses); the baseline is the same process idle.
 * Measured after the creates and again after listing every instance (the reconcile the driver
 * runs). The machine's available memory is checked first and watched during the creates; every
 * container and network made is removed at the end. The creates are timed per hundred: the last
 * hundred may take at most 1.3x the first (a create must not cost more as containers accumulate).
 * The baseline for that growth is measured first in the same run: as many containers made straight
 * through the Engine API (same image, memory limit, bridge networks of 125 with a static address
 * each, same width), timed the same way and removed before the agent starts; the agent's growth
 * over the engine's own is printed beside it.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAgentClient } from '../../agent/client/http.js';
import { silentLogger } from '../../common/log.js';
import { loadConfig } from '../../conf/load.js';
import { createImageClient } from '../../glance-bridge/client/http.js';
import { startImageService } from '../../glance-bridge/main.js';
import { REGISTRY } from '../lib/stack.js';
import { benchInstance } from './lib/agent-node.js';
import { startAgentProcess } from './lib/agent-process.js';
import { BENCH_LABEL, PROJECT_LABEL, createBridgeNetwork, pullImage, rawCreateStart, removeLabelled, runBounded } from './lib/docker.js';
import { printResult, printTable } from './lib/report.js';
import { runBench } from './lib/run.js';

const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 500);
const PER_PROJECT = 125;
const MEMORY_MB = 16;
const WIDTH = 8;
const TARGET_MB = 100;
/** A container costs dockerd, containerd's shim and the guest together roughly this much. */
const HOST_MB_PER_CONTAINER = 20;
const MIN_AVAILABLE_MB = 2048;
const SETTLE_MS = 5_000;
/** The last hundred creates may take at most this many times the first hundred. */
const HUNDRED_RATIO_TARGET = 1.3;

const availableMb = (): number => Number(/^MemAvailable:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) / 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mb = (kb: number) => kb / 1024;

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/**
 * Runs `create` for each of `count` items, `WIDTH` at a time, and returns how long each hundred took
 * (from the start to the 100th to finish, then from each hundredth to the next).
 */
async function timedHundreds(count: number, create: (i: number) => Promise<void>, progress: (done: number, secs: number) => void): Promise<number[]> {
  const t0 = Date.now();
  const hundredsAt: number[] = [];
  let done = 0;
  await runBounded(
    Array.from({ length: count }, (_, i) => i),
    WIDTH,
    async (i) => {
      if (availableMb() < MIN_AVAILABLE_MB) throw new Error(`stopped at ${i} containers: under ${MIN_AVAILABLE_MB} MB of memory left`);
      await create(i);
      if (++done % 100 === 0) {
        hundredsAt.push(Date.now());
        progress(done, (Date.now() - t0) / 1000);
      }
    },
  );
  return hundredsAt.map((t, k) => (t - (k === 0 ? t0 : hundredsAt[k - 1]!)) / 1000);
}

runBench('agent-rss', 20 * 60_000, async (b) => {
  if (INSTANCES < 200) throw new Error('BENCH_INSTANCES must be at least 200: the first and the last hundred creates are compared');
  const needMb = INSTANCES * HOST_MB_PER_CONTAINER + MIN_AVAILABLE_MB;
  if (availableMb() < needMb) throw new Error(`needs about ${needMb} MB available for ${INSTANCES} containers, the machine has ${availableMb().toFixed(0)} MB`);
  const runId = randomUUID().slice(0, 8);
  const projects = Array.from({ length: Math.ceil(INSTANCES / PER_PROJECT) }, (_, i) => `bench-${runId}-${i}`);
  for (const p of projects) b.cleanup(() => removeLabelled(PROJECT_LABEL, p));

  const state = mkdtempSync(join(tmpdir(), 'berth-bench-images-'));
  b.cleanup(async () => rmSync(state, { recursive: true, force: true }));
  const images = await startImageService(
    loadConfig({ env: {}, overrides: { DEFAULT: { state_path: state }, image_store: { listen: '127.0.0.1:0' }, registry: { allowed_internal: [REGISTRY] } } }),
    { log: silentLogger() },
  );
  b.cleanup(() => images.close());
  const image = await createImageClient({ url: images.url, roles: ['admin'] }).importImage(`docker://${REGISTRY}/berth/busybox:latest`);

  // The engine's own growth: the same creates straight through the Engine API, then removed.
  b.log(`baseline: ${INSTANCES} containers straight through the Engine API, ${WIDTH} at a time`);
  const rawRun = `bench-raw-${runId}`;
  b.cleanup(() => removeLabelled(BENCH_LABEL, rawRun));
  const rawImage = await pullImage(`${REGISTRY}/berth/busybox`, 'latest');
  const rawNets: Array<{ name: string; prefix: string }> = [];
  for (let k = 0; k < projects.length; k++) rawNets.push(await createBridgeNetwork(`${rawRun}-${k}`, rawRun));
  const enginePerHundred = await timedHundreds(
    INSTANCES,
    async (i) => {
      const net = rawNets[Math.floor(i / PER_PROJECT)]!;
      await rawCreateStart({
        imageId: rawImage,
        memoryMb: MEMORY_MB,
        runId: rawRun,
        network: { name: net.name, ipv4: `${net.prefix}.${2 + (i % PER_PROJECT)}` },
      });
    },
    (done, secs) => b.log(`engine: ${done} created after ${secs.toFixed(0)} s`),
  );
  b.log(`removed ${await removeLabelled(BENCH_LABEL, rawRun)} baseline containers`);

  const agent = await startAgentProcess({
    host: `bench-rss-${runId}`,
    imagesUrl: images.url,
    port: await freePort(),
    env: { BERTH__DOCKER__STOP_TIMEOUT: '0', ...(process.env.BENCH_NETWORK_ATTACH ? { BERTH__DOCKER__NETWORK_ATTACH: process.env.BENCH_NETWORK_ATTACH } : {}) },
  });
  const client = createAgentClient({ url: agent.url, token: agent.token, retries: 10, backoffMs: 200 });
  b.cleanup(async () => {
    await client
      .listInstances()
      .then((all) => runBounded(all, WIDTH, (i) => client.deleteInstance(i.uuid, { timeout: 0 }).catch(() => undefined)))
      .catch(() => undefined);
    await fetch(`${agent.url}/v1/networks/prune`, { method: 'POST', headers: { authorization: `Bearer ${agent.token}` } }).catch(() => undefined);
    await agent.stop();
  });
  b.log(`agent pid ${agent.pid}: ${agent.runtime}`);
  for (
    let i = 0;
    i < 100 &&
    !(await client.health().then(
      (h) => h.ok,
      () => false,
    ));
    i++
  )
    await sleep(100);
  await sleep(SETTLE_MS);
  const idleKb = agent.rssKb();

  b.log(`creating ${INSTANCES} containers, ${WIDTH} at a time`);
  const t0 = Date.now();
  const uuids = Array.from({ length: INSTANCES }, () => randomUUID());
  const perHundred = await timedHundreds(
    INSTANCES,
    async (i) => {
      await client.createInstance(uuids[i]!, benchInstance(image.id, projects[Math.floor(i / PER_PROJECT)]!, MEMORY_MB));
    },
    (done, secs) => b.log(`${done} created after ${secs.toFixed(0)} s, agent RSS ${mb(agent.rssKb()).toFixed(1)} MB`),
  );
  await sleep(SETTLE_MS);
  const loadedKb = agent.rssKb();
  const listed = await client.listInstances();
  if (listed.filter((i) => i.power_state === 'running').length < INSTANCES)
    throw new Error(`the agent lists ${listed.length} instances, not ${INSTANCES} running ones`);
  await sleep(SETTLE_MS);
  const afterListKb = agent.rssKb();
  const peakKb = agent.peakRssKb();

  printTable(`berth-agent resident memory (VmRSS), ${agent.runtime}, ${INSTANCES} busybox containers of ${MEMORY_MB} MB`, [
    { state: 'idle, no instance (baseline)', instances: 0, 'RSS MB': mb(idleKb) },
    { state: `${INSTANCES} running, ${SETTLE_MS / 1000} s after the last create`, instances: INSTANCES, 'RSS MB': mb(loadedKb) },
    { state: 'after listing all of them (reconcile)', instances: INSTANCES, 'RSS MB': mb(afterListKb) },
    { state: 'peak over the run (VmHWM)', instances: INSTANCES, 'RSS MB': mb(peakKb) },
  ]);
  printTable(
    `time per hundred creates, ${WIDTH} in flight: through the agent, and straight through the Engine API (baseline)`,
    perHundred.map((secs, k) => ({
      creates: `${k * 100 + 1}-${(k + 1) * 100}`,
      'agent s': secs,
      'agent x first': secs / perHundred[0]!,
      'engine s': enginePerHundred[k] ?? NaN,
      'engine x first': (enginePerHundred[k] ?? NaN) / enginePerHundred[0]!,
    })),
  );
  const agentGrowth = perHundred[perHundred.length - 1]! / perHundred[0]!;
  const engineGrowth = enginePerHundred[enginePerHundred.length - 1]! / enginePerHundred[0]!;
  process.stdout.write(
    `\ncreates took ${((Date.now() - t0) / 1000).toFixed(0)} s; growth over idle ${mb(Math.max(loadedKb, afterListKb) - idleKb).toFixed(1)} MB\n`,
  );
  return printResult('agent-rss', [
    { metric: 'rss_mb', value: mb(Math.max(loadedKb, afterListKb)), target: TARGET_MB },
    { metric: 'last_hundred_x_first', value: agentGrowth, target: HUNDRED_RATIO_TARGET },
    { metric: 'growth_vs_engine', value: agentGrowth / engineGrowth, target: HUNDRED_RATIO_TARGET },
  ]);
});
