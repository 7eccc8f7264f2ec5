/**
 * Boot latency (issue 3, benchmark a): build_and_run_instance cast → instance.create.end, image
 * already on the host, sequential boots; against raw create+start through the Docker Engine API
 * and `docker run -d` through the CLI, with the same image and memory limit, in the same run.
 * The three are interleaved per round so that background load falls on all of them alike.
 */
import { randomUUID } from 'node:crypto';
import { startStack } from '../lib/stack.js';
import { BenchClient } from './lib/amqp-client.js';
import { benchBuild, BENCH_FLAVOR, castBuild, castTerminate, VERSIONED_KEYS } from './lib/builds.js';
import { BENCH_LABEL, cliRun, PROJECT_LABEL, rawCreateStart, removeContainer, removeLabelled } from './lib/docker.js';
import { elapsedMs, printResult, printTable, summarize } from './lib/report.js';
import { runBench } from './lib/run.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
const TARGET = 1.25;
const STEP_TIMEOUT_MS = 60_000;

runBench('boot-latency', 15 * 60_000, async (run) => {
  const runId = randomUUID().slice(0, 8);
  const project = `bench-${runId}`;
  run.cleanup(() => removeLabelled(PROJECT_LABEL, project));
  run.cleanup(() => removeLabelled(BENCH_LABEL, runId));
  const stack = await startStack();
  run.cleanup(() => stack.stop());
  const client = await BenchClient.open();
  run.cleanup(() => client.close());
  await client.listen(stack.exchange, VERSIONED_KEYS);
  const image = await stack.testImage();
  const imageId = String(image.docker_image_id);
  const spec = { imageId, memoryMb: BENCH_FLAVOR.memory_mb, runId };

  const bootBerth = async (): Promise<number> => {
    const b = benchBuild(image, project, stack.host);
    stack.track(b.uuid);
    const { sentNs, endNs } = await castBuild(client, stack, b, STEP_TIMEOUT_MS);
    await castTerminate(client, stack, b, STEP_TIMEOUT_MS);
    return Number(endNs - sentNs) / 1e6;
  };
  const timed = async (start: (s: typeof spec) => Promise<string>): Promise<number> => {
    const t0 = process.hrtime.bigint();
    const id = await start(spec);
    const ms = elapsedMs(t0);
    await removeContainer(id);
    return ms;
  };

  // The first boot loads the image into dockerd and creates the project network; not counted.
  run.log('warm-up');
  await bootBerth();
  await timed(rawCreateStart);
  await timed(cliRun);

  const berth: number[] = [];
  const raw: number[] = [];
  const cli: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    berth.push(await bootBerth());
    raw.push(await timed(rawCreateStart));
    cli.push(await timed(cliRun));
    run.log(`round ${i + 1}/${ROUNDS}: berth ${berth.at(-1)!.toFixed(1)} ms, raw ${raw.at(-1)!.toFixed(1)} ms, cli ${cli.at(-1)!.toFixed(1)} ms`);
  }

  const rows = [
    { path: 'berth: cast → instance.create.end', ...summarize(berth) },
    { path: 'raw: POST create + start (Engine API)', ...summarize(raw) },
    { path: 'docker run -d (CLI)', ...summarize(cli) },
  ].map(({ path, n, median, p90, min, max }) => ({ path, n, 'median ms': median, 'p90 ms': p90, 'min ms': min, 'max ms': max }));
  printTable(`boot latency, ${ROUNDS} sequential boots each, busybox, ${BENCH_FLAVOR.memory_mb} MB, image on the host`, rows);
  const ratio = summarize(berth).median / summarize(raw).median;
  process.stdout.write(
    `\nberth/raw at the median: ${ratio.toFixed(2)}x; berth/cli at the median: ${(summarize(berth).median / summarize(cli).median).toFixed(2)}x\n`,
  );
  return printResult('boot-latency', [{ metric: 'ratio', value: ratio, target: TARGET }]);
});
