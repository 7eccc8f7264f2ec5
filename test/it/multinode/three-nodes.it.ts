import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { startAgent, type RunningAgent } from '../../../agent/main.js';
import { projectNetworkName } from '../../../agent/network/project-networks.js';
import { requestJson } from '../../../common/http-client.js';
import { silentLogger } from '../../../common/log.js';
import { loadConfig } from '../../../conf/load.js';
import type { ImageServiceHandle } from '../../../glance-bridge/main.js';
import { buildAndRunInstance, imageDict, instancePrimitive, instanceRequest, terminateInstance } from '../../../tools/lib/nova-requests.js';
import { AMQP_URL, AmqpPeer } from '../../support/amqp.js';
import { containersWithLabel, DOCKER, LABEL_PROJECT, removeContainers } from '../../support/docker-containers.js';
import { spawnDriverProcess, type DriverProcess } from '../../support/driver-process.js';
import { ROOT } from '../../support/fixtures.js';
import { waitUntil } from '../../support/waits.js';
import { createSharedDatabase, startSharedImages } from './stack.js';

const exec = promisify(execFile);
const TRANSPORT_URL = process.env.BERTH_TEST_TRANSPORT_URL ?? AMQP_URL.replace(/^amqp:/, 'rabbit:') + '/';

interface Node {
  host: string;
  agent: RunningAgent;
  driver: DriverProcess;
  statusUrl: string;
}
interface InstanceView {
  uuid: string;
  host: string;
  vm_state: string;
}

function metric(text: string, key: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${key} `));
  return line ? Number(line.slice(key.length + 1)) : undefined;
}

/**
 * Three compute nodes on one machine, as real processes: one broker exchange, one PostgreSQL
 * database, one image service, an agent each, all on the real dockerd.
 */
describe('three compute nodes sharing a broker, a database and an image service', function () {
  this.timeout(120_000);
  const id = randomUUID().slice(0, 8);
  const exchange = `berth-multi-${id}`;
  const project = `multinode-${id}`;
  const dbName = `berth_multi_${id}`;
  const hosts = [1, 2, 3].map((n) => `node${n}-${id}`);
  let state: string;
  let admin: pg.Client | undefined;
  let images: ImageServiceHandle | undefined;
  const nodes: Node[] = [];
  let peer: AmqpPeer | undefined;
  let image: { id: string } & Record<string, unknown>;

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'berth-multi-'));
    const db = await createSharedDatabase(dbName);
    admin = db.admin;
    const dbUrl = db.url;
    const shared = await startSharedImages(state);
    images = shared.images;
    image = shared.image as typeof image;
    // One at a time: the first driver applies the migrations to the shared database.
    for (const host of hosts) {
      const dir = join(state, host);
      mkdirSync(dir);
      const agent = await startAgent(
        loadConfig({
          env: {},
          overrides: {
            DEFAULT: { state_path: join(dir, 'agent'), host },
            glance: { api_url: images.url },
            agent: { listen: '127.0.0.1:0' },
          },
        }),
        { log: silentLogger() },
      );
      const logFile = join(state, `${host}.log`);
      const driver = await spawnDriverProcess(
        {
          BERTH__DEFAULT__HOST: host,
          BERTH__DEFAULT__CONTROL_EXCHANGE: exchange,
          BERTH__DEFAULT__STATE_PATH: dir,
          BERTH__DEFAULT__TRANSPORT_URL: TRANSPORT_URL,
          BERTH__DATABASE__CONNECTION: dbUrl,
          BERTH__DEFAULT__STATUS_LISTEN: '127.0.0.1:0',
          BERTH__GLANCE__API_URL: images.url,
          BERTH__AGENT__URL: agent.url,
          BERTH__AGENT__TOKEN: agent.token,
          BERTH__COMPUTE__VCPUS: '8',
          BERTH__COMPUTE__MEMORY_MB: '4096',
        },
        dir,
        logFile,
      );
      const listening = readFileSync(logFile, 'utf8')
        .split('\n')
        .find((l) => l.includes('"status server listening"'));
      assert.ok(listening, `${host} started no status server`);
      nodes.push({ host, agent, driver, statusUrl: (JSON.parse(listening) as { url: string }).url });
    }
    peer = await AmqpPeer.open();
  });

  after(async () => {
    await peer?.close();
    for (const n of nodes) await n.driver.kill('SIGTERM');
    await removeContainers(await containersWithLabel(`${LABEL_PROJECT}=${project}`).catch(() => []));
    await requestJson(DOCKER, { method: 'DELETE', path: `/v1.41/networks/${projectNetworkName(project)}`, accept: [404, 409] }).catch(() => undefined);
    for (const n of nodes) await n.agent.close();
    await images?.close();
    await admin?.query(`DROP DATABASE IF EXISTS ${dbName}`).catch(() => undefined);
    await admin?.end();
    rmSync(state, { recursive: true, force: true });
  });

  const scrape = async (n: Node) => (await fetch(`${n.statusUrl}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const agentMetrics = async (n: Node) =>
    (await fetch(`${n.agent.url}/metrics`, { headers: { authorization: `Bearer ${n.agent.token}` }, signal: AbortSignal.timeout(10_000) })).text();
  const berthCall = async <T>(host: string, method: string, args: Record<string, unknown>): Promise<T> => {
    const { reply } = await peer!.call(exchange, `compute.${host}`, { method, namespace: 'berth', version: '1.0', args }, 15_000);
    assert.equal(reply.failure, null, String(reply.failure));
    return reply.result as T;
  };
  const listOn = (host: string) => berthCall<InstanceView[]>(host, 'list_instances', {});
  async function berth(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      BERTH_FROM_SOURCE: '1',
      BERTH_CONFIG: '',
      BERTH__DEFAULT__CONTROL_EXCHANGE: exchange,
      BERTH__DEFAULT__TRANSPORT_URL: TRANSPORT_URL,
      BERTH__DEFAULT__STATE_PATH: state,
      BERTH__DEFAULT__RPC_RESPONSE_TIMEOUT: '3',
      BERTH__DEFAULT__HOST: hosts[0],
    };
    try {
      const { stdout, stderr } = await exec(join(ROOT, 'tools', 'berth'), args, { env, timeout: 60_000 });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  }

  const instance = () => instancePrimitive({ image_id: image.id, flavor: { vcpus: 1, memory_mb: 64 }, project_id: project });
  let built: Record<string, unknown>;
  let uuid: string;

  it('all three nodes are ready', async () => {
    for (const n of nodes) {
      const res = await fetch(`${n.statusUrl}/readyz`, { signal: AbortSignal.timeout(10_000) });
      assert.equal(res.status, 200, `${n.host}: ${await res.text()}`);
    }
  });

  it('a build cast to compute.node2 runs on node2 only', async () => {
    built = instance();
    uuid = (built['nova_object.data'] as { uuid: string }).uuid;
    peer!.cast(exchange, `compute.${hosts[1]}`, buildAndRunInstance(built, imageDict(image as never)));
    await waitUntil(async () => (await listOn(hosts[1]!)).find((i) => i.uuid === uuid && i.vm_state === 'active'), 60_000, 'instance active on node2');
    const [on1, on2, on3] = await Promise.all(hosts.map(listOn));
    assert.deepEqual(
      on2!.map((i) => [i.uuid, i.host]),
      [[uuid, hosts[1]]],
    );
    assert.deepEqual(on1, []);
    assert.deepEqual(on3, []);
    const builds = await Promise.all(
      nodes.map(async (n) => metric(await scrape(n), 'berth_rpc_messages_total{method="build_and_run_instance",kind="cast",outcome="ok"}')),
    );
    assert.deepEqual(builds, [undefined, 1, undefined]);
    // Only node2's agent was asked to create a container.
    const creates = await Promise.all(
      nodes.map(async (n) => (await agentMetrics(n)).split('\n').some((l) => l.startsWith('berth_agent_requests_total{method="PUT"'))),
    );
    assert.deepEqual(creates, [false, true, false]);
  });

  it('a fanout cast reaches all three nodes', async () => {
    const unknown = instance();
    // oslo's fanout: exchange <topic>_fanout, every compute server's own queue bound to it.
    peer!.cast('compute_fanout', 'compute', instanceRequest('inject_network_info', unknown));
    const key = 'berth_rpc_messages_total{method="inject_network_info",kind="cast",outcome="failure"}';
    for (const n of nodes) await waitUntil(async () => metric(await scrape(n), key) === 1, 15_000, `fanout received by ${n.host}`);
  });

  it('the CLI lists across the nodes with a host column', async () => {
    const json = await berth('server', 'list', '--hosts', hosts.join(','), '-f', 'json');
    assert.equal(json.code, 0, json.stderr);
    const rows = JSON.parse(json.stdout) as Array<{ host: string; uuid: string }>;
    assert.deepEqual(
      rows.map((r) => [r.host, r.uuid]),
      [[hosts[1], uuid]],
    );
    const table = await berth('server', 'list', '--all-hosts', '--hosts', hosts.join(','));
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^\| Host +\| Uuid +\|/m);
    assert.ok(table.stdout.includes(hosts[1]!));
  });

  it('the CLI still lists the nodes that answer, and exits 3 naming the one that does not', async () => {
    const gone = `node9-${id}`;
    const res = await berth('server', 'list', '--hosts', `${hosts[1]},${gone}`, '-f', 'json');
    assert.equal(res.code, 3);
    assert.deepEqual(
      (JSON.parse(res.stdout) as Array<{ host: string }>).map((r) => r.host),
      [hosts[1]],
    );
    assert.equal(res.stderr.trim().split('\n').length, 1);
    assert.match(res.stderr, new RegExp(`^berth: ${gone}: no reply`));
    const usage = await berth('server', 'list', '--all-hosts');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /--hosts/);
  });

  it("deletes on node2; the records stay each node's own", async () => {
    peer!.cast(exchange, `compute.${hosts[1]}`, terminateInstance(built));
    await waitUntil(async () => (await listOn(hosts[1]!)).length === 0, 60_000, 'instance gone from node2');
    const deleted = await berthCall<Array<InstanceView>>(hosts[1]!, 'list_instances', { all: true });
    assert.deepEqual(
      deleted.map((i) => [i.uuid, i.vm_state]),
      [[uuid, 'deleted']],
    );
    for (const host of [hosts[0]!, hosts[2]!]) assert.deepEqual(await berthCall(host, 'list_instances', { all: true }), []);
    assert.deepEqual(await containersWithLabel(`${LABEL_PROJECT}=${project}`), []);
  });
});
