/**
 * Concurrent builds (issue 3, benchmark b): 100 build casts at once → all `instance.create.end`,
 * wall time, with `[DEFAULT] max_concurrent_builds` at the same width; against 100 raw
 * create+start through the Docker Engine API, all in flight together, in the same run.
 */
import { randomUUID } from 'node:crypto';
import { startStack, type Stack } from '../lib/stack.js';
import { BenchClient } from './lib/amqp-client.js';
import { benchBuild, BENCH_FLAVOR, castBatch, castBuild, castTerminate, VERSIONED_KEYS, type BatchOutcome } from './lib/builds.js';
import { BENCH_LABEL, PROJECT_LABEL, rawCreateStart, removeContainer, removeLabelled } from './lib/docker.js';
import { elapsedMs, printResult, printTable, summarize } from './lib/report.js';
import { runBench } from './lib/run.js';

const WIDTH = Number(process.env.BENCH_CONCURRENCY ?? 100);
const TARGET = 1.3;
const BUILD_TIMEOUT_MS = 5 * 60_000;
const STALL_MS = 60_000;

/** What became of the builds that did not end active, from the driver's own records. */
async function unfinishedReport(stack: Stack, batch: BatchOutcome): Promise<string> {
  const states = new Map<string, number>();
  for (const uuid of [...batch.failed, ...batch.pending]) {
    const row = await stack.driver.store.get(uuid);
    const fault = row ? await stack.driver.store.latestFault(uuid) : null;
    const key = `${row ? `${row.vm_state}/${row.task_state ?? '-'}` : 'no record'}${fault ? ` (fault: ${fault.message.slice(0, 80)})` : ''}`;
    states.set(key, (states.get(key) ?? 0) + 1);
  }
  const summary = [...states].map(([k, n]) => `${n} × ${k}`).join('; ');
  const first = [...batch.sentNs.values()].reduce((a, b) => (a < b ? a : b));
  const last = [...batch.endNs.values()].reduce((a, b) => (a > b ? a : b), first);
  return (
    `${batch.endNs.size} of ${batch.sentNs.size} builds active (the last after ${(Number(last - first) / 1e6).toFixed(0)} ms), ` +
    `${batch.failed.length} instance.create.error, ${batch.pending.length} with no outcome: ${summary}`
  );
}

runBench('concurrent-builds', 20 * 60_000, async (run) => {
  const runId = randomUUID().slice(0, 8);
  const project = `bench-${runId}`;
  run.cleanup(() => removeLabelled(PROJECT_LABEL, project));
  run.cleanup(() => removeLabelled(BENCH_LABEL, runId));
  // Capacity is raised so that the resource tracker admits every build on a two-core host;
  // claims are bookkeeping, the containers are what is measured.
  const stack = await startStack({
    overrides: { DEFAULT: { max_concurrent_builds: WIDTH }, compute: { cpu_allocation_ratio: 1000, disk_allocation_ratio: 100 } },
  });
  run.cleanup(() => stack.stop());
  const client = await BenchClient.open();
  run.cleanup(() => client.close());
  await client.listen(stack.exchange, VERSIONED_KEYS);
  const image = await stack.testImage();
  const spec = { imageId: String(image.docker_image_id), memoryMb: BENCH_FLAVOR.memory_mb, runId };

  // One boot each first: the image is loaded into dockerd and the project network exists.
  run.log('warm-up');
  const warm = benchBuild(image, project, stack.host);
  stack.track(warm.uuid);
  await castBuild(client, stack, warm, 60_000);
  await castTerminate(client, stack, warm, 60_000);
  await removeContainer(await rawCreateStart(spec));

  run.log(`${WIDTH} builds through Berth`);
  const builds = Array.from({ length: WIDTH }, () => benchBuild(image, project, stack.host));
  builds.forEach((b) => stack.track(b.uuid));
  const t0 = process.hrtime.bigint();
  const batch = await castBatch(client, stack, builds, { stallMs: STALL_MS, timeoutMs: BUILD_TIMEOUT_MS });
  const berthWall = elapsedMs(t0);
  if (batch.failed.length || batch.pending.length) throw new Error(await unfinishedReport(stack, batch));
  const berthEach = [...batch.endNs].map(([uuid, end]) => Number(end - batch.sentNs.get(uuid)!) / 1e6);
  run.log(`berth: ${berthWall.toFixed(0)} ms; removing its containers`);
  await removeLabelled(PROJECT_LABEL, project);

  run.log(`${WIDTH} raw create+start in flight together`);
  const t1 = process.hrtime.bigint();
  const rawEach = await Promise.all(
    builds.map(async () => {
      const s = process.hrtime.bigint();
      await rawCreateStart(spec);
      return elapsedMs(s);
    }),
  );
  const rawWall = elapsedMs(t1);
  run.log(`raw: ${rawWall.toFixed(0)} ms; removing its containers`);
  await removeLabelled(BENCH_LABEL, runId);

  const row = (path: string, wall: number, each: number[]) => {
    const s = summarize(each);
    return { path, n: s.n, 'wall ms': wall, 'per-boot median ms': s.median, 'per-boot p90 ms': s.p90, 'per-boot max ms': s.max };
  };
  printTable(`${WIDTH} concurrent boots, busybox, ${BENCH_FLAVOR.memory_mb} MB, max_concurrent_builds=${WIDTH}`, [
    row('berth: casts → all instance.create.end', berthWall, berthEach),
    row('raw: create + start, all in flight', rawWall, rawEach),
  ]);
  return printResult('concurrent-builds', [{ metric: 'ratio', value: berthWall / rawWall, target: TARGET }]);
});
