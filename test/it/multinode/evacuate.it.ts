import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { startAgent, type RunningAgent } from '../../../agent/main.js';
import { projectNetworkName } from '../../../agent/network/project-networks.js';
import { LABEL_HOST } from '../../../agent/runtime/types.js';
import { requestJson } from '../../../common/http-client.js';
import { silentLogger } from '../../../common/log.js';
import { loadConfig } from '../../../conf/load.js';
import type { InstanceView } from '../../../driver/compute/berth-endpoint.js';
import type { ImageServiceHandle } from '../../../glance-bridge/main.js';
import { buildAndRunInstance, imageDict, instancePrimitive } from '../../../tools/lib/nova-requests.js';
import { AMQP_URL, AmqpPeer } from '../../support/amqp.js';
import { containersWithLabel, DOCKER, LABEL_INSTANCE, LABEL_PROJECT, removeContainers } from '../../support/docker-containers.js';
import { spawnDriverProcess, type DriverProcess } from '../../support/driver-process.js';
import { ROOT } from '../../support/fixtures.js';
import { waitUntil } from '../../support/waits.js';
import { execIn } from '../agent/docker-helpers.js';
import { createSharedDatabase, startSharedImages } from './stack.js';

const exec = promisify(execFile);
const TRANSPORT_URL = process.env.BERTH_TEST_TRANSPORT_URL ?? AMQP_URL.replace(/^amqp:/, 'rabbit:') + '/';

interface ContainerView {
  Id: string;
  Names: string[];
  State: string;
  Labels: Record<string, string>;
}

/**
 * Evacuation in standalone mode: two compute nodes as real processes on one broker exchange and
 * one PostgreSQL database, each with its own agent on the one real dockerd. node1's compute
 * service goes down (its agent and containers stay, as on a host whose compute service died);
 * `berth server evacuate` rebuilds one of its instances on node2; node1 comes back and removes
 * that instance's old container, and nothing else.
 */
describe('evacuation between two standalone nodes sharing a database and a dockerd', function () {
  this.timeout(180_000);
  const id = randomUUID().slice(0, 8);
  const exchange = `berth-evac-${id}`;
  const project = `evac-${id}`;
  const dbName = `berth_evac_${id}`;
  const hosts = [`evac1-${id}`, `evac2-${id}`] as const;
  let state: string;
  let admin: pg.Client | undefined;
  let images: ImageServiceHandle | undefined;
  const agents: RunningAgent[] = [];
  const drivers = new Map<string, DriverProcess>();
  const settings = new Map<string, Record<string, string>>();
  let peer: AmqpPeer | undefined;
  let image: { id: string } & Record<string, unknown>;

  const startDriver = async (host: string) => {
    drivers.set(host, await spawnDriverProcess(settings.get(host)!, join(state, host), join(state, `${host}.log`)));
  };

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'berth-evac-'));
    const db = await createSharedDatabase(dbName);
    admin = db.admin;
    const dbUrl = db.url;
    const shared = await startSharedImages(state);
    images = shared.images;
    image = shared.image as typeof image;
    for (const host of hosts) {
      const dir = join(state, host);
      mkdirSync(dir);
      const agent = await startAgent(
        loadConfig({
          env: {},
          overrides: { DEFAULT: { state_path: join(dir, 'agent'), host }, glance: { api_url: images.url }, agent: { listen: '127.0.0.1:0' } },
        }),
        { log: silentLogger() },
      );
      agents.push(agent);
      settings.set(host, {
        BERTH__DEFAULT__HOST: host,
        BERTH__DEFAULT__CONTROL_EXCHANGE: exchange,
        BERTH__DEFAULT__STATE_PATH: dir,
        BERTH__DEFAULT__TRANSPORT_URL: TRANSPORT_URL,
        BERTH__DATABASE__CONNECTION: dbUrl,
        BERTH__GLANCE__API_URL: images.url,
        BERTH__AGENT__URL: agent.url,
        BERTH__AGENT__TOKEN: agent.token,
        BERTH__COMPUTE__VCPUS: '8',
        BERTH__COMPUTE__MEMORY_MB: '4096',
      });
      // One at a time: the first applies the migrations to the shared database.
      await startDriver(host);
    }
    peer = await AmqpPeer.open();
  });

  after(async () => {
    await peer?.close();
    for (const d of drivers.values()) await d.kill('SIGTERM');
    await removeContainers(await containersWithLabel(`${LABEL_PROJECT}=${project}`).catch(() => []));
    await requestJson(DOCKER, { method: 'DELETE', path: `/v1.41/networks/${projectNetworkName(project)}`, accept: [404, 409] }).catch(() => undefined);
    for (const a of agents) await a.close();
    await images?.close();
    await admin?.query(`DROP DATABASE IF EXISTS ${dbName}`).catch(() => undefined);
    await admin?.end();
    rmSync(state, { recursive: true, force: true });
  });

  const berthCall = async <T>(host: string, method: string, args: Record<string, unknown>): Promise<T> => {
    const { reply } = await peer!.call(exchange, `compute.${host}`, { method, namespace: 'berth', version: '1.0', args }, 15_000);
    assert.equal(reply.failure, null, String(reply.failure));
    return reply.result as T;
  };
  const show = (host: string, uuid: string) =>
    berthCall<InstanceView & { migration: { type: string; status: string } | null }>(host, 'show_instance', { uuid });
  async function berth(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      BERTH_FROM_SOURCE: '1',
      BERTH_CONFIG: '',
      BERTH__DEFAULT__CONTROL_EXCHANGE: exchange,
      BERTH__DEFAULT__TRANSPORT_URL: TRANSPORT_URL,
      BERTH__DEFAULT__STATE_PATH: state,
      BERTH__DEFAULT__RPC_RESPONSE_TIMEOUT: '10',
      BERTH__DEFAULT__HOST: hosts[0],
      BERTH__DEFAULT__COMPUTE_HOSTS: hosts.join(','),
    };
    try {
      const { stdout, stderr } = await exec(join(ROOT, 'tools', 'berth'), args, { env, timeout: 120_000 });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  }
  const containersOf = async (uuid: string) => (await containersWithLabel(`${LABEL_INSTANCE}=${uuid}`)) as unknown as ContainerView[];
  const boot = async (name: string) => {
    const inst = instancePrimitive({ image_id: image.id, name, flavor: { vcpus: 1, memory_mb: 64 }, project_id: project });
    const uuid = (inst['nova_object.data'] as { uuid: string }).uuid;
    peer!.cast(exchange, `compute.${hosts[0]}`, buildAndRunInstance(inst, imageDict(image as never)));
    await waitUntil(async () => (await show(hosts[0], uuid).catch(() => null))?.vm_state === 'active', 60_000, `${name} active on node1`);
    return uuid;
  };

  let moved: string;
  let kept: string;
  let picked: string;
  let movedAddress: string;

  it('refuses to evacuate from a node whose compute service answers', async () => {
    moved = await boot('moved');
    kept = await boot('kept');
    picked = await boot('picked');
    movedAddress = (await show(hosts[0], moved)).ip_address!;
    const res = await berth('server', 'evacuate', moved, '--host', hosts[1]);
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /still answers.*COMPUTE_SERVICE_IN_USE/);
    assert.equal((await show(hosts[1], moved)).host, hosts[0]);
  });

  it('with node1 down, `berth server evacuate --host node2 --wait` boots the instance on node2 beside the old container', async () => {
    await drivers.get(hosts[0])!.kill('SIGTERM');
    drivers.delete(hosts[0]);
    const res = await berth('-f', 'json', 'server', 'evacuate', 'moved', '--host', hosts[1], '--wait');
    assert.equal(res.code, 0, res.stderr);
    const view = JSON.parse(res.stdout) as { id: string; status: string; host: string; migration: { type: string; status: string } };
    assert.deepEqual([view.id, view.status, view.host], [moved, 'ACTIVE', hosts[1]]);
    assert.deepEqual([view.migration.type, view.migration.status], ['evacuation', 'done']);
    // Both containers on the one dockerd, each under its own host's label and name, both running.
    const both = await containersOf(moved);
    assert.deepEqual(both.map((c) => [c.Labels[LABEL_HOST], c.Names[0], c.State]).sort(), [
      [hosts[0], `/berth-${moved}`, 'running'],
      [hosts[1], `/berth-${moved}.${hosts[1]}`, 'running'],
    ]);
    // Each is plugged into the project network through a host link of its own: the new plug took
    // nothing from the old guest, which still has its eth0 and address.
    assert.match(await execIn(`berth-${moved}`, ['ip', '-4', 'addr', 'show', 'eth0']), new RegExp(`inet ${movedAddress.replaceAll('.', '\\.')}/`));
    // node2 lists it, with an address of node2's agent.
    const on2 = await berthCall<InstanceView[]>(hosts[1], 'list_instances', {});
    assert.deepEqual(
      on2.map((i) => [i.uuid, i.vm_state]),
      [[moved, 'active']],
    );
    assert.ok(on2[0]!.ip_address);
    assert.match(
      await execIn(`berth-${moved}.${hosts[1]}`, ['ip', '-4', 'addr', 'show', 'eth0']),
      new RegExp(`inet ${on2[0]!.ip_address!.replaceAll('.', '\\.')}/`),
    );
    // Without --host the target is the node of [DEFAULT] compute_hosts that answers with room.
    const auto = await berth('-f', 'json', 'server', 'evacuate', picked, '--wait');
    assert.equal(auto.code, 0, auto.stderr);
    const view2 = JSON.parse(auto.stdout) as { host: string; status: string };
    assert.deepEqual([view2.host, view2.status], [hosts[1], 'ACTIVE']);
  });

  it('node1 back: its container of the evacuated instance is removed, the migration completed, everything else untouched', async () => {
    await startDriver(hosts[0]);
    const left = await containersOf(moved);
    assert.deepEqual(
      left.map((c) => [c.Labels[LABEL_HOST], c.State]),
      [[hosts[1], 'running']],
    );
    assert.deepEqual(
      (await containersOf(picked)).map((c) => c.Labels[LABEL_HOST]),
      [hosts[1]],
    );
    const after = await show(hosts[1], moved);
    assert.deepEqual([after.host, after.vm_state, after.migration?.status], [hosts[1], 'active', 'completed']);
    const keptView = await show(hosts[0], kept);
    assert.deepEqual([keptView.host, keptView.vm_state], [hosts[0], 'active']);
    assert.deepEqual(
      (await containersOf(kept)).map((c) => c.State),
      ['running'],
    );
    // node2 still drives the evacuated instance through its own container.
    const stop = await berth('server', 'stop', moved, '--host', hosts[1], '--wait');
    assert.equal(stop.code, 0, stop.stderr);
    assert.deepEqual(
      (await containersOf(moved)).map((c) => c.State),
      ['exited'],
    );
    assert.equal((await show(hosts[0], moved)).vm_state, 'stopped');
  });

  it('`berth host maintenance on|off` opens and closes a window that `berth host show` reports', async () => {
    const on = await berth('-f', 'json', 'host', 'maintenance', 'on', '--host', hosts[1]);
    assert.equal(on.code, 0, on.stderr);
    assert.deepEqual(JSON.parse(on.stdout), { host: hosts[1], maintenance_mode: 'on_maintenance' });
    const shown = await berth('-f', 'json', 'host', 'show', '--host', hosts[1]);
    assert.equal((JSON.parse(shown.stdout) as { maintenance: boolean }).maintenance, true);
    const off = await berth('-f', 'json', 'host', 'maintenance', 'off', '--host', hosts[1]);
    assert.deepEqual(JSON.parse(off.stdout), { host: hosts[1], maintenance_mode: 'off_maintenance' });
    assert.equal((await berth('host', 'maintenance', 'sideways', '--host', hosts[1])).code, 2);
  });
});
