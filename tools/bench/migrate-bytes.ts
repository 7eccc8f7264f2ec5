/**
 * Cold migration between two nodes (issue 17): an instance of a 100 MB image (busybox plus one
 * 100 MB layer of random bytes) writes 10 MB, then moves to a second node sharing the image
 * service and dockerd (prep_resize to the destination → instance.resize_finish.end). Printed:
 * the bytes the source sent through the image store against the image's size and against the
 * data written (measured by the source's agent as it uploaded, recorded on the migration), and
 * the move's time against a fresh boot of the same image measured in the same run.
 * Target: the bytes sent are at most the data written plus 64 KiB (no layer of the base image crosses).
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startAgent } from '../../agent/main.js';
import { silentLogger } from '../../common/log.js';
import { loadConfig } from '../../conf/load.js';
import { rabbitDefaults } from '../../driver/rpc/broker-connect.js';
import { createImageClient } from '../../glance-bridge/client/http.js';
import { startImageService } from '../../glance-bridge/main.js';
import {
  buildAndRunInstance,
  flavorPrimitive,
  imageDict,
  instancePrimitive,
  migrationPrimitive,
  prepResize,
  requestContext,
  resizeDecision,
} from '../lib/nova-requests.js';
import { RpcClient } from '../lib/rpc-client.js';
import { removeContainersOf, REGISTRY } from '../lib/stack.js';
import { buildAndPush, dockerRmi, removeFromRegistry, DOCKER_CLI } from './lib/bench-images.js';
import { startDriverProcess } from './lib/driver-process.js';
import { printResult, printTable } from './lib/report.js';
import { runBench } from './lib/run.js';

const run = promisify(execFile);
const MB = 1024 * 1024;
const IMAGE_MB = Number(process.env.BENCH_IMAGE_MB ?? 100);
const WRITTEN_MB = Number(process.env.BENCH_WRITTEN_MB ?? 10);
const OVERHEAD = 64 * 1024;
const AMQP_URL = process.env.BERTH_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const STEP_S = 300;
const FLAVOR = { vcpus: 1, memory_mb: 64, name: 'bench.move' };

runBench('migrate-bytes', 15 * 60_000, async (bench) => {
  const id = randomUUID().slice(0, 8);
  const exchange = `berth-bench-move-${id}`;
  const project = `bench-move-${id}`;
  const state = mkdtempSync(join(tmpdir(), 'berth-bench-move-'));
  bench.cleanup(async () => rmSync(state, { recursive: true, force: true }));

  // The 100 MB image, built here from the test image and pushed to the loopback registry.
  const repo = `berth/bench-move-${id}`;
  const tag = `${REGISTRY}/${repo}:latest`;
  writeFileSync(join(state, 'Dockerfile'), `FROM ${REGISTRY}/berth/busybox:latest\nRUN dd if=/dev/urandom of=/base.bin bs=1M count=${IMAGE_MB} 2>/dev/null\n`);
  bench.log(`building a ${IMAGE_MB} MB image`);
  await buildAndPush(state, tag);
  bench.cleanup(() => removeFromRegistry(REGISTRY, repo, ['latest'], process.env.BERTH_REGISTRY_STORAGE ?? null));
  bench.cleanup(() => dockerRmi(tag));

  const images = await startImageService(
    loadConfig({
      env: {},
      overrides: {
        DEFAULT: { state_path: join(state, 'images'), host: `images-${id}` },
        image_store: { listen: '127.0.0.1:0' },
        registry: { allowed_internal: [REGISTRY] },
      },
    }),
    { log: silentLogger() },
  );
  bench.cleanup(() => images.close());
  const image = await createImageClient({ url: images.url, roles: ['admin'] }).importImage(`docker://${tag}`);
  const hosts = [`move1-${id}`, `move2-${id}`];
  const drivers: Awaited<ReturnType<typeof startDriverProcess>>[] = [];
  for (const host of hosts) {
    const agent = await startAgent(
      loadConfig({
        env: {},
        overrides: { DEFAULT: { state_path: join(state, host), host }, glance: { api_url: images.url }, agent: { listen: '127.0.0.1:0' } },
      }),
      { log: silentLogger() },
    );
    bench.cleanup(() => agent.close());
    const driver = await startDriverProcess({
      agentUrl: agent.url,
      agentToken: agent.token,
      amqpUrl: AMQP_URL,
      env: { BERTH__DEFAULT__HOST: host, BERTH__DEFAULT__CONTROL_EXCHANGE: exchange, BERTH__GLANCE__API_URL: images.url, BERTH__DEFAULT__STATUS_LISTEN: '' },
    });
    bench.cleanup(() => driver.stop());
    drivers.push(driver);
  }
  const rpc = new RpcClient({ url: AMQP_URL.replace(/^amqp:/, 'rabbit:'), exchange, rabbit: rabbitDefaults() });
  await rpc.connect(['versioned_notifications.info', 'versioned_notifications.error']);
  bench.cleanup(() => rpc.close());
  // A call before the node declared its queue is lost: ask again until it answers.
  for (const [i, host] of hosts.entries()) {
    for (let attempt = 0; ; attempt++) {
      const ok = await rpc.call(`compute.${host}`, { method: 'get_host_capacity', namespace: 'berth', version: '1.0', args: {} }, 5).then(
        () => true,
        () => false,
      );
      if (ok) break;
      if (attempt >= 60) throw new Error(`${host} does not answer:\n${drivers[i]!.logTail(30)}`);
    }
  }
  const waitFor = (uuid: string, event: string) =>
    new Promise<number>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no instance.${event}.end of ${uuid} in ${STEP_S} s`)), STEP_S * 1000);
      rpc.onEvent((type, msg) => {
        const data = (msg.payload as { 'nova_object.data'?: { uuid?: string } } | undefined)?.['nova_object.data'];
        if (data?.uuid !== uuid) return;
        if (type === `instance.${event}.end`) resolve(Number(process.hrtime.bigint()) / 1e6);
        if (type.endsWith('.error')) reject(new Error(`${type} of ${uuid}`));
        if (type.endsWith('.end') || type.endsWith('.error')) clearTimeout(t);
      });
    });
  const now = () => Number(process.hrtime.bigint()) / 1e6;
  const ctx = requestContext(project);
  const boot = async (host: string): Promise<{ uuid: string; ms: number }> => {
    const inst = instancePrimitive({ image_id: image.id, flavor: FLAVOR, project_id: project });
    const uuid = (inst['nova_object.data'] as { uuid: string }).uuid;
    bench.cleanup(() => removeContainersOf(uuid));
    const done = waitFor(uuid, 'create');
    const t0 = now();
    await rpc.cast(`compute.${host}`, buildAndRunInstance(inst, imageDict(image), ctx));
    return { uuid, ms: (await done) - t0 };
  };

  // The baseline: fresh boots of the image on each node (the first also fetches it onto the engine).
  const first = await boot(hosts[0]!);
  const fresh = await boot(hosts[1]!);
  const uuid = first.uuid;
  const [container] = (await run(DOCKER_CLI, ['ps', '-q', '--filter', `label=org.openstack.berth.instance=${uuid}`])).stdout.trim().split('\n');
  await run(DOCKER_CLI, ['exec', container!, 'sh', '-c', `dd if=/dev/urandom of=/written.bin bs=1M count=${WRITTEN_MB} 2>/dev/null`]);

  const source = instancePrimitive({ uuid, image_id: image.id, flavor: FLAVOR, project_id: project, host: hosts[0], vm_state: 'active', task_state: null });
  const migration = migrationPrimitive({ instance_uuid: uuid, host: hosts[0]!, dest: hosts[1], migration_type: 'migration' });
  const finished = waitFor(uuid, 'resize_finish');
  const t0 = now();
  await rpc.cast(`compute.${hosts[1]}`, prepResize(source, flavorPrimitive(FLAVOR), migration, hosts[1]!, ctx));
  const moveMs =
    (await finished.catch(async (err: unknown) => {
      const seen = await rpc.call<{ fault: unknown }>(
        `compute.${hosts[0]}`,
        { method: 'show_instance', namespace: 'berth', version: '1.0', args: { uuid } },
        30,
      );
      throw new Error(`${String(err)}: ${JSON.stringify(seen.fault)}`);
    })) - t0;
  const shown = await rpc.call<{ migration: { transferred_bytes: number } }>(
    `compute.${hosts[1]}`,
    { method: 'show_instance', namespace: 'berth', version: '1.0', args: { uuid } },
    60,
  );
  const sent = shown.migration.transferred_bytes;
  const confirmed = waitFor(uuid, 'resize_confirm');
  await rpc.cast(`compute.${hosts[0]}`, resizeDecision('confirm_resize', source, migration, ctx));
  await confirmed;

  const written = WRITTEN_MB * MB;
  printTable('cold migration between two nodes (one dockerd, one image service)', [
    { measure: 'image size in the store (bytes)', value: image.size ?? NaN },
    { measure: 'data written in the guest (bytes)', value: written },
    { measure: 'bytes sent through the image store', value: sent },
    { measure: 'sent / image size', value: (sent / (image.size ?? NaN)).toFixed(3) },
    { measure: 'sent / data written', value: (sent / written).toFixed(3) },
    { measure: 'first boot, image fetched (ms)', value: first.ms.toFixed(0) },
    { measure: 'fresh boot, image present (ms)', value: fresh.ms.toFixed(0) },
    { measure: 'migration, prep_resize to resize_finish (ms)', value: moveMs.toFixed(0) },
    { measure: 'migration / fresh boot', value: (moveMs / fresh.ms).toFixed(2) },
  ]);
  return printResult('migrate-bytes', [{ metric: 'sent_over_written_plus_64KiB', value: sent / (written + OVERHEAD), target: 1 }]);
});
