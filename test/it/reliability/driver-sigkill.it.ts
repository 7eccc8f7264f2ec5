import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAgent } from '../../../agent/main.js';
import { silentLogger } from '../../../common/log.js';
import { loadConfig } from '../../../conf/load.js';
import { createImageClient } from '../../../glance-bridge/client/http.js';
import { startImageService } from '../../../glance-bridge/main.js';
import { buildAndRunInstance, imageDict, instancePrimitive } from '../../../tools/lib/nova-requests.js';
import { AMQP_URL, AmqpPeer } from '../../support/amqp.js';
import { containersWithLabel, LABEL_INSTANCE, LABEL_PROJECT, removeContainers } from '../../support/docker-containers.js';
import { spawnDriverProcess, type DriverProcess } from '../../support/driver-process.js';
import { waitUntil } from '../../support/waits.js';

const REGISTRY = process.env.BERTH_TEST_REGISTRY ?? '127.0.0.1:5000';
const BUILDS = 12;

interface InstanceView {
  uuid: string;
  vm_state: string;
  task_state: string | null;
}
interface InstanceDetail extends InstanceView {
  fault: { exception: string; message: string } | null;
}

/**
 * berth-compute killed with SIGKILL while builds run against a real agent and dockerd, then
 * started again on the same database: interrupted builds are finished (or failed with a fault),
 * the redelivered build casts make no second container, and nothing is left orphaned.
 */
describe('reliability: driver SIGKILL mid-build, restarted', function () {
  this.timeout(120_000);
  const id = randomUUID().slice(0, 8);
  const host = `kill-${id}`;
  const exchange = `berth-kill-${id}`;
  const project = `reliability-${id}`;
  let state: string;
  let images: Awaited<ReturnType<typeof startImageService>> | undefined;
  let agent: Awaited<ReturnType<typeof startAgent>> | undefined;
  let driver: DriverProcess | undefined;
  let peer: AmqpPeer | undefined;

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'berth-kill-'));
    for (const d of ['agent', 'driver']) mkdirSync(join(state, d));
    const agentState = join(state, 'agent');
    const base = loadConfig({
      env: {},
      overrides: {
        DEFAULT: { state_path: agentState, host },
        image_store: { listen: '127.0.0.1:0' },
        agent: { listen: '127.0.0.1:0' },
        registry: { allowed_internal: [REGISTRY] },
      },
    });
    images = await startImageService(base, { log: silentLogger() });
    const withImages = loadConfig({
      env: {},
      overrides: { DEFAULT: { state_path: agentState, host }, glance: { api_url: images.url }, agent: { listen: '127.0.0.1:0' } },
    });
    agent = await startAgent(withImages, { log: silentLogger() });
    peer = await AmqpPeer.open();
  });

  after(async () => {
    await driver?.kill('SIGTERM');
    await peer?.close();
    await removeContainers(await containersWithLabel(`${LABEL_PROJECT}=${project}`).catch(() => []));
    await agent?.close();
    await images?.close();
    if (process.env.BERTH_TEST_KEEP_STATE) console.log(`      state and driver logs kept in ${state}`);
    else rmSync(state, { recursive: true, force: true });
  });

  const startDriver = (n: number) =>
    spawnDriverProcess(
      {
        BERTH__DEFAULT__HOST: host,
        BERTH__DEFAULT__CONTROL_EXCHANGE: exchange,
        BERTH__DEFAULT__STATE_PATH: join(state, 'driver'),
        BERTH__DEFAULT__TRANSPORT_URL: process.env.BERTH_TEST_TRANSPORT_URL ?? AMQP_URL.replace(/^amqp:/, 'rabbit:') + '/',
        BERTH__DATABASE__CONNECTION: `sqlite:///${join(state, 'driver', 'driver.sqlite')}`,
        BERTH__AGENT__URL: agent!.url,
        BERTH__AGENT__TOKEN: agent!.token,
        BERTH__COMPUTE__VCPUS: '64',
        BERTH__DEFAULT__MAX_CONCURRENT_BUILDS: '2',
      },
      join(state, 'driver'),
      join(state, `driver-${n}.log`),
    );

  const berthCall = async <T>(method: string, args: Record<string, unknown>): Promise<T> => {
    const { reply } = await peer!.call(exchange, `compute.${host}`, { method, namespace: 'berth', version: '1.0', args }, 10_000);
    assert.equal(reply.failure, null, String(reply.failure));
    return reply.result as T;
  };

  it('leaves no instance building, no orphan and no duplicate container', async () => {
    const image = await createImageClient({ url: images!.url, roles: ['admin'] }).importImage(`docker://${REGISTRY}/berth/busybox:latest`);
    driver = await startDriver(1);
    const uuids: string[] = [];
    for (let i = 0; i < BUILDS; i++) {
      const inst = instancePrimitive({ image_id: image.id, flavor: { vcpus: 1, memory_mb: 64 }, project_id: project });
      uuids.push((inst['nova_object.data'] as { uuid: string }).uuid);
      peer!.cast(exchange, `compute.${host}`, buildAndRunInstance(inst, imageDict({ id: image.id })));
    }
    const mine = () => containersWithLabel(`${LABEL_PROJECT}=${project}`);
    await waitUntil(async () => (await mine()).length > 0, 60_000, 'the first container');
    await driver.kill('SIGKILL');
    assert.equal(await driver.exited, 'SIGKILL');
    const atKill = (await mine()).length;
    assert.ok(atKill < BUILDS, 'the kill came while builds were still running');

    const t0 = Date.now();
    driver = await startDriver(2);
    const startMs = Date.now() - t0;
    let seen: InstanceView[] = [];
    const settled = await waitUntil(
      async () => {
        const rows = await berthCall<InstanceView[]>('list_instances', {});
        seen = rows.filter((r) => uuids.includes(r.uuid));
        return seen.length === BUILDS && seen.every((r) => r.vm_state !== 'building' && r.task_state === null) ? seen : undefined;
      },
      60_000,
      'every build settled after the restart',
      250,
    ).catch((err: Error) => {
      const errors = [1, 2].flatMap((n) =>
        readFileSync(join(state, `driver-${n}.log`), 'utf8')
          .split('\n')
          .filter((l) => l.includes('"level":50'))
          .map((l) => `driver ${n}: ${l.slice(0, 300)}`),
      );
      throw new Error(
        `${err.message}; last seen: ${seen.map((r) => `${r.uuid.slice(0, 8)} ${r.vm_state}/${r.task_state ?? '-'}`).join(', ')} (${seen.length} of ${BUILDS} recorded)\n${errors.join('\n')}`,
      );
    });
    const recoveredMs = Date.now() - t0;

    for (const r of settled) {
      if (r.vm_state === 'active') continue;
      assert.equal(r.vm_state, 'error', `instance ${r.uuid} is ${r.vm_state}`);
      const detail = await berthCall<InstanceDetail>('show_instance', { uuid: r.uuid });
      assert.ok(detail.fault, `instance ${r.uuid} in error has a fault`);
    }
    const active = new Set(settled.filter((r) => r.vm_state === 'active').map((r) => r.uuid));
    const containers = await mine();
    const perUuid = new Map<string, number>();
    for (const c of containers) perUuid.set(c.Labels[LABEL_INSTANCE]!, (perUuid.get(c.Labels[LABEL_INSTANCE]!) ?? 0) + 1);
    for (const [uuid, n] of perUuid) {
      assert.ok(active.has(uuid), `container of ${uuid} belongs to an active instance (orphan otherwise)`);
      assert.equal(n, 1, `one container for ${uuid}`);
    }
    for (const uuid of active) {
      assert.equal(perUuid.get(uuid), 1, `active instance ${uuid} has its container`);
      assert.equal(containers.find((c) => c.Labels[LABEL_INSTANCE] === uuid)?.State, 'running');
    }
    const recovered = /"recovered":(\d+),[^\n]*recovered interrupted operations/.exec(readFileSync(join(state, 'driver-2.log'), 'utf8'))?.[1] ?? '0';
    console.log(
      `      ${atKill} of ${BUILDS} containers existed at SIGKILL, ${recovered} builds finished by start-up recovery; restarted driver consuming after ${startMs} ms, all settled after ${recoveredMs} ms: ${active.size} active, ${BUILDS - active.size} error`,
    );
  });
});
