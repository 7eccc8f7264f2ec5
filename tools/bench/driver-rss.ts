/**
 * Driver memory (issue 3, benchmark d): resident set of berth-compute, run as its own process,
 * holding 500 active instances; the baseline is the same process idle before the builds. The
 * agent is a stub that answers at once and runs no containers, so only the driver is measured.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { AMQP_URL, BenchClient } from './lib/amqp-client.js';
import { benchBuild, castBatch, VERSIONED_KEYS } from './lib/builds.js';
import { startDriverProcess } from './lib/driver-process.js';
import { printResult, printTable } from './lib/report.js';
import { runBench } from './lib/run.js';
import { startStubAgent } from './lib/stub-agent.js';

const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 500);
const TARGET_MB = 150;
const BUILDS_TIMEOUT_MS = 5 * 60_000;
/** Builds that end in neither create.end nor create.error would otherwise hold the run until the timeout. */
const STALL_MS = 30_000;
/** Unset: the driver's own default for [DEFAULT] max_concurrent_builds. */
const MAX_BUILDS = process.env.BENCH_MAX_CONCURRENT_BUILDS;
const SETTLE_MS = 5_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mb = (kb: number) => kb / 1024;

function peakRssKb(pid: number): number {
  return Number(/^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
}

runBench('driver-rss', 10 * 60_000, async (run) => {
  process.stdout.write('NOTE: the agent is a stub (in this process, no containers); only the driver process is measured.\n');
  const client = await BenchClient.open();
  run.cleanup(() => client.close());
  const agent = await startStubAgent(randomUUID());
  run.cleanup(() => agent.close());
  // Capacity is raised so that the resource tracker admits every stub instance.
  const driver = await startDriverProcess({
    agentUrl: agent.url,
    agentToken: agent.token,
    amqpUrl: AMQP_URL,
    env: {
      ...(MAX_BUILDS ? { BERTH__DEFAULT__MAX_CONCURRENT_BUILDS: MAX_BUILDS } : {}),
      BERTH__COMPUTE__VCPUS: '4096',
      BERTH__COMPUTE__MEMORY_MB: String(INSTANCES * 128 + 1024),
      BERTH__COMPUTE__DISK_GB: String(INSTANCES * 2),
    },
  });
  run.cleanup(async () => {
    await driver.stop();
    await client.removeTopology({ queues: [`compute.${driver.host}`], exchanges: [driver.exchange] });
  });
  run.log(`driver pid ${driver.pid}: ${driver.runtime}`);
  await client.waitForQueue(`compute.${driver.host}`, 60_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${driver.logTail()}`);
  });
  await client.listen(driver.exchange, VERSIONED_KEYS);
  await sleep(SETTLE_MS);
  const idleKb = driver.rssKb();

  const builds = Array.from({ length: INSTANCES }, () => benchBuild({ id: randomUUID() }, 'bench-rss', driver.host));
  run.log(`casting ${INSTANCES} builds (max_concurrent_builds ${MAX_BUILDS ?? 'default'})`);
  const t0 = Date.now();
  const batch = await castBatch(client, driver, builds, { stallMs: STALL_MS, timeoutMs: BUILDS_TIMEOUT_MS });
  if (batch.failed.length || batch.pending.length) {
    throw new Error(
      `${batch.endNs.size} of ${INSTANCES} builds active, ${batch.failed.length} instance.create.error, ${batch.pending.length} with no outcome ` +
        `(no build event for ${STALL_MS / 1000} s); the driver logged ${driver.logCount('request failed')} failed requests, e.g.\n${driver.logTail(3)}`,
    );
  }
  run.log(`all ${INSTANCES} active after ${((Date.now() - t0) / 1000).toFixed(1)} s; stub agent holds ${agent.count()}`);
  await sleep(SETTLE_MS);
  const loadedKb = driver.rssKb();
  const peakKb = peakRssKb(driver.pid);

  printTable(`berth-compute resident memory (VmRSS), ${driver.runtime}, stub agent, max_concurrent_builds ${MAX_BUILDS ?? 'default'}`, [
    { state: 'idle, before any build (baseline)', instances: 0, 'RSS MB': mb(idleKb) },
    { state: `${INSTANCES} instances active, ${SETTLE_MS / 1000} s after the last`, instances: INSTANCES, 'RSS MB': mb(loadedKb) },
    { state: 'peak over the run (VmHWM)', instances: INSTANCES, 'RSS MB': mb(peakKb) },
  ]);
  process.stdout.write(
    `\ngrowth over idle: ${mb(loadedKb - idleKb).toFixed(1)} MB (${((loadedKb - idleKb) / INSTANCES).toFixed(1)} kB per instance); ratio to idle ${(loadedKb / idleKb).toFixed(2)}x\n`,
  );
  return printResult('driver-rss', [{ metric: 'rss_mb', value: mb(loadedKb), target: TARGET_MB }]);
});
