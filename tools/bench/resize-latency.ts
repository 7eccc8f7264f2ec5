/**
 * Same-host resize (issue 17): prep_resize cast → instance.resize_finish.end on a running
 * container (the limits change in place through Docker's update API), then confirm_resize →
 * instance.resize_confirm.end; the next round resizes back. Baseline in the same run, interleaved
 * per round: a stop (SIGKILL after 0 s) and start of a plain container of the same image through
 * the Docker Engine API, the cheapest way to give a container new limits by restarting it.
 * Target: a resize (prep to finish) in at most 0.5 s at the median.
 */
import { randomUUID } from 'node:crypto';
import { requestJson } from '../../common/http-client.js';
import { flavorPrimitive, instancePrimitive, migrationPrimitive, prepResize, requestContext, resizeDecision } from '../lib/nova-requests.js';
import { DOCKER, startStack } from '../lib/stack.js';
import { BenchClient, type NotificationEvent } from './lib/amqp-client.js';
import { benchBuild, BENCH_FLAVOR, castBuild, VERSIONED_KEYS } from './lib/builds.js';
import { BENCH_LABEL, PROJECT_LABEL, rawCreateStart, removeContainer, removeLabelled } from './lib/docker.js';
import { elapsedMs, printResult, printTable, summarize } from './lib/report.js';
import { runBench } from './lib/run.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const TARGET_MS = 500;
const STEP_TIMEOUT_MS = 60_000;
const FLAVORS = [
  { ...BENCH_FLAVOR, name: 'bench.small' },
  { vcpus: 2, memory_mb: 128, name: 'bench.big' },
];

runBench('resize-latency', 10 * 60_000, async (run) => {
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

  const b = benchBuild(image, project, stack.host);
  stack.track(b.uuid);
  await castBuild(client, stack, b, STEP_TIMEOUT_MS);
  const to = `compute.${stack.host}`;
  const ended = (event: string) =>
    client.waitForEvent(
      (e: NotificationEvent) => e.uuid === b.uuid && (e.eventType === `instance.${event}.end` || e.eventType === `instance.${event}.error`),
      STEP_TIMEOUT_MS,
      `instance.${event}.end`,
    );
  const step = async (event: string, msg: Record<string, unknown>): Promise<number> => {
    const done = ended(event);
    const t0 = process.hrtime.bigint();
    client.cast(stack.exchange, to, msg);
    const e = await done;
    if (!e.eventType.endsWith('.end')) throw new Error(`${event} failed (${e.eventType})`);
    return Number(e.atNs - t0) / 1e6;
  };
  let current = 0;
  const resizeOnce = async (): Promise<{ resize: number; confirm: number }> => {
    const next = 1 - current;
    const ctx = requestContext(project);
    const inst = (vm_state: string) =>
      instancePrimitive({ uuid: b.uuid, image_id: image.id, flavor: FLAVORS[current]!, project_id: project, host: stack.host, vm_state, task_state: null });
    const migration = migrationPrimitive({ instance_uuid: b.uuid, host: stack.host });
    const resize = await step('resize_finish', prepResize(inst('active'), flavorPrimitive(FLAVORS[next]!), migration, stack.host, ctx));
    const confirm = await step('resize_confirm', resizeDecision('confirm_resize', inst('resized'), migration, requestContext(project)));
    current = next;
    return { resize, confirm };
  };

  const baselineId = await rawCreateStart({ imageId: String(image.docker_image_id), memoryMb: BENCH_FLAVOR.memory_mb, runId });
  run.cleanup(() => removeContainer(baselineId));
  const restart = async (): Promise<number> => {
    const t0 = process.hrtime.bigint();
    await requestJson(DOCKER, { method: 'POST', path: `/v1.41/containers/${baselineId}/stop?t=0` }, 'dockerd');
    await requestJson(DOCKER, { method: 'POST', path: `/v1.41/containers/${baselineId}/start` }, 'dockerd');
    return elapsedMs(t0);
  };

  run.log('warm-up');
  await resizeOnce();
  await restart();
  const resizes: number[] = [];
  const confirms: number[] = [];
  const restarts: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const r = await resizeOnce();
    resizes.push(r.resize);
    confirms.push(r.confirm);
    restarts.push(await restart());
    run.log(`round ${i + 1}/${ROUNDS}: resize ${r.resize.toFixed(1)} ms, confirm ${r.confirm.toFixed(1)} ms, stop+start ${restarts.at(-1)!.toFixed(1)} ms`);
  }
  const rows = [
    { path: 'berth: prep_resize cast → instance.resize_finish.end', ...summarize(resizes) },
    { path: 'berth: confirm_resize cast → instance.resize_confirm.end', ...summarize(confirms) },
    { path: 'baseline: container stop (t=0) + start (Engine API)', ...summarize(restarts) },
  ].map(({ path, n, median, p90, min, max }) => ({ path, n, 'median ms': median, 'p90 ms': p90, 'min ms': min, 'max ms': max }));
  printTable(`same-host resize, ${ROUNDS} rounds, busybox, ${FLAVORS[0]!.memory_mb} ↔ ${FLAVORS[1]!.memory_mb} MB, running guest`, rows);
  const median = summarize(resizes).median;
  process.stdout.write(`\nresize/baseline at the median: ${(median / summarize(restarts).median).toFixed(2)}x\n`);
  return printResult('resize-latency', [{ metric: 'resize_median_ms', value: median, target: TARGET_MS }]);
});
