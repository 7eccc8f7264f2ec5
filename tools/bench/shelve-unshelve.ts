/**
 * Shelve + unshelve on the same host (issue 17), standalone mode on real services: a running
 * container with 100 MB written into it (random bytes, so nothing compresses them away) is
 * shelved (shelve_instance cast → instance.shelve_offload.end: stop, commit, upload into the
 * image store, container removed, claim released) and unshelved (unshelve_instance cast →
 * instance.unshelve.end: the snapshot fetched back into dockerd and booted). Baseline in the same
 * run, one per round: a fresh boot of the same base image on the same node
 * (build_and_run_instance cast → instance.create.end, the image already on the host), which is
 * also how each round's instance is made. Target: shelve + unshelve ≤ 3× the fresh boot, at the
 * medians.
 *
 * Also per round, so that a miss can be told from the engine's own cost: the engine floor, a
 * plain container of the same image with the same bytes written, committed, saved, removed,
 * loaded back and booted through the Engine API with no Berth in the way (lib/engine-floor.ts);
 * and where Berth's time went, stage by stage, as the driver, agent and image service timed
 * their stages (common/stages.ts).
 */
import { randomUUID } from 'node:crypto';
import { StageRecorder, type StageTiming } from '../../common/stages.js';
import { requestJson, requestRaw } from '../../common/http-client.js';
import { createImageClient } from '../../glance-bridge/client/http.js';
import { imageDict, instancePrimitive, requestContext, shelveInstance, unshelveInstance } from '../lib/nova-requests.js';
import { containersOf, DOCKER, startStack } from '../lib/stack.js';
import { BenchClient, type NotificationEvent } from './lib/amqp-client.js';
import { benchBuild, BENCH_FLAVOR, castBuild, castTerminate, VERSIONED_KEYS } from './lib/builds.js';
import { BENCH_LABEL, PROJECT_LABEL, removeLabelled } from './lib/docker.js';
import { engineFloor, type EngineFloor } from './lib/engine-floor.js';
import { elapsedMs, printResult, printTable, summarize } from './lib/report.js';
import { runBench } from './lib/run.js';
import { stageRows } from './lib/stages.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const WRITE_MB = Number(process.env.BENCH_WRITE_MB ?? 100);
const TARGET_RATIO = 3;
const STEP_TIMEOUT_MS = 300_000;

/** Runs a command in a container through the Engine API and waits for it; fails on a non-zero exit. */
async function exec(containerId: string, cmd: string[]): Promise<void> {
  const { body } = await requestJson<{ Id: string }>(
    DOCKER,
    { method: 'POST', path: `/v1.41/containers/${containerId}/exec`, body: { Cmd: cmd, AttachStdout: true, AttachStderr: true } },
    'dockerd',
  );
  const res = await requestRaw(
    DOCKER,
    { method: 'POST', path: `/v1.41/exec/${body.Id}/start`, body: { Detach: false, Tty: false }, timeoutMs: 300_000 },
    'dockerd',
  );
  for await (const _chunk of res.body) {
    // drained: the exec has ended when its output stream does
  }
  const info = await requestJson<{ ExitCode: number | null }>(DOCKER, { path: `/v1.41/exec/${body.Id}/json` }, 'dockerd');
  if (info.body.ExitCode !== 0) throw new Error(`${cmd.join(' ')} exited ${String(info.body.ExitCode)} in ${containerId}`);
}

runBench('shelve-unshelve', 30 * 60_000, async (run) => {
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
  const images = createImageClient({ url: stack.imagesUrl, roles: ['admin'] });
  const to = `compute.${stack.host}`;
  const snapshotImages: string[] = [];
  // Each stage the driver, agent and image service time (common/stages.ts), for the breakdown.
  const stages = new StageRecorder();
  run.cleanup(async () => stages.close());
  run.cleanup(async () => {
    for (const id of snapshotImages)
      await requestJson(DOCKER, { method: 'DELETE', path: `/v1.41/images/${id}?force=1`, accept: [404, 409] }, 'dockerd').catch(() => undefined);
  });

  /** Casts and waits for `instance.<event>.end`; nova announces no shelve or unshelve error, so the record's failed action ends the wait too. */
  const step = async (uuid: string, event: string, action: string, msg: Record<string, unknown>): Promise<number> => {
    const done = client.waitForEvent(
      (e: NotificationEvent) => e.uuid === uuid && e.eventType === `instance.${event}.end`,
      STEP_TIMEOUT_MS,
      `instance.${event}.end`,
    );
    let settled = false;
    const failed = (async () => {
      while (!settled) {
        await new Promise((r) => setTimeout(r, 1000));
        const last = (await stack.driver.store.actions(uuid)).filter((a) => a.action === action).at(-1);
        if (last?.result === 'Error') throw new Error(`${action} of ${uuid} failed: ${(await stack.driver.store.latestFault(uuid))?.message ?? last.message}`);
      }
      return new Promise<never>(() => undefined);
    })();
    const t0 = process.hrtime.bigint();
    client.cast(stack.exchange, to, msg);
    try {
      const e = await Promise.race([done, failed]);
      return Number(e.atNs - t0) / 1e6;
    } finally {
      settled = true;
    }
  };

  /** One round: a fresh boot (the baseline), 100 MB written (not timed), shelve, unshelve, delete. */
  const round = async (): Promise<{ boot: number; shelve: number; unshelve: number; stages: StageTiming[] }> => {
    const b = benchBuild(image, project, stack.host);
    stack.track(b.uuid);
    const { sentNs, endNs } = await castBuild(client, stack, b, STEP_TIMEOUT_MS);
    const boot = Number(endNs - sentNs) / 1e6;
    const [c] = await containersOf(b.uuid);
    if (!c) throw new Error(`no container for ${b.uuid}`);
    await exec(c.Id, ['sh', '-c', `dd if=/dev/urandom of=/root/blob bs=1M count=${WRITE_MB} 2>/dev/null && sync`]);
    const inst = (vm_state: string, task_state: string | null) =>
      instancePrimitive({ uuid: b.uuid, image_id: image.id, flavor: BENCH_FLAVOR, project_id: project, host: stack.host, vm_state, task_state });
    // nova-api's part: the queued `<name>-shelved` image exists before the cast (not timed).
    const snap = await images.createImage({
      name: `${b.uuid}-shelved`,
      container_format: 'docker',
      disk_format: 'raw',
      image_type: 'snapshot',
      instance_uuid: b.uuid,
      // The agent reads it as the instance's project; the operator's image service (noauth) has no per-project caller here.
      visibility: 'public',
    });
    stages.take(b.uuid);
    const shelve = await step(b.uuid, 'shelve_offload', 'shelve', shelveInstance(inst('active', 'shelving'), snap.id, requestContext(project)));
    const unshelve = await step(
      b.uuid,
      'unshelve',
      'unshelve',
      unshelveInstance(inst('shelved_offloaded', 'unshelving'), imageDict({ id: snap.id }), stack.host, requestContext(project)),
    );
    const timed = [...stages.take(b.uuid), ...stages.take(snap.id)];
    const [back] = await containersOf(b.uuid);
    const inspected = back ? await requestJson<{ Image: string }>(DOCKER, { path: `/v1.41/containers/${back.Id}/json` }, 'dockerd') : null;
    if (inspected) snapshotImages.push(inspected.body.Image);
    await castTerminate(client, stack, b, STEP_TIMEOUT_MS);
    return { boot, shelve, unshelve, stages: timed };
  };

  run.log('warm-up');
  await round();
  const boots: number[] = [];
  const shelves: number[] = [];
  const unshelves: number[] = [];
  const totals: number[] = [];
  const breakdown: StageTiming[][] = [];
  const floors: EngineFloor[] = [];
  const fill = (cid: string) => exec(cid, ['sh', '-c', `dd if=/dev/urandom of=/root/blob bs=1M count=${WRITE_MB} 2>/dev/null && sync`]);
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = process.hrtime.bigint();
    const r = await round();
    boots.push(r.boot);
    shelves.push(r.shelve);
    unshelves.push(r.unshelve);
    totals.push(r.shelve + r.unshelve);
    breakdown.push(r.stages);
    const f = await engineFloor(image.docker_image_id!, runId, fill);
    floors.push(f);
    run.log(
      `round ${i + 1}/${ROUNDS}: engine floor: commit ${f.commit.toFixed(0)} ms, save ${f.save.toFixed(0)} ms, load ${f.load.toFixed(0)} ms, boot ${f.boot.toFixed(0)} ms`,
    );
    run.log(
      `round ${i + 1}/${ROUNDS}: boot ${r.boot.toFixed(0)} ms, shelve ${r.shelve.toFixed(0)} ms, unshelve ${r.unshelve.toFixed(0)} ms (round ${elapsedMs(t0).toFixed(0)} ms)`,
    );
  }
  const rows = [
    { path: 'berth: shelve_instance cast → instance.shelve_offload.end', ...summarize(shelves) },
    { path: 'berth: unshelve_instance cast → instance.unshelve.end', ...summarize(unshelves) },
    { path: 'berth: shelve + unshelve', ...summarize(totals) },
    { path: 'baseline: fresh boot, build cast → instance.create.end', ...summarize(boots) },
    { path: 'engine floor: docker commit + save + load + create/start', ...summarize(floors.map((f) => f.commit + f.save + f.load + f.boot)) },
    { path: '  of which docker commit', ...summarize(floors.map((f) => f.commit)) },
    { path: '  of which docker save (to a file)', ...summarize(floors.map((f) => f.save)) },
    { path: '  of which docker load (from the file)', ...summarize(floors.map((f) => f.load)) },
  ].map(({ path, n, median, p90, min, max }) => ({ path, n, 'median ms': median, 'p90 ms': p90, 'min ms': min, 'max ms': max }));
  printTable(`shelve + unshelve on the same host, ${ROUNDS} rounds, busybox with ${WRITE_MB} MB written into the container`, rows);
  printTable('where the time goes: stages of the shelve and unshelve as the driver, agent and image service timed them', stageRows(breakdown));
  const ratio = summarize(totals).median / summarize(boots).median;
  const floor = summarize(floors.map((f) => f.commit + f.save + f.load + f.boot)).median;
  process.stdout.write(`\nshelve+unshelve / fresh boot at the medians: ${ratio.toFixed(2)}x\n`);
  process.stdout.write(
    `engine floor / fresh boot: ${(floor / summarize(boots).median).toFixed(2)}x; shelve+unshelve / engine floor: ${(summarize(totals).median / floor).toFixed(2)}x\n`,
  );
  return printResult('shelve-unshelve', [{ metric: 'ratio_to_fresh_boot', value: ratio, target: TARGET_RATIO }]);
});
