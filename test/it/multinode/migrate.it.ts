import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startAgent, type RunningAgent } from '../../../agent/main.js';
import { silentLogger } from '../../../common/log.js';
import { loadConfig } from '../../../conf/load.js';
import type { ImageServiceHandle } from '../../../glance-bridge/main.js';
import { AMQP_URL, AmqpPeer } from '../../support/amqp.js';
import { containersWithLabel, LABEL_INSTANCE, removeContainers, type LabelledContainer } from '../../support/docker-containers.js';
import { spawnDriverProcess, type DriverProcess } from '../../support/driver-process.js';
import { ROOT } from '../../support/fixtures.js';
import { startSharedImages } from './stack.js';

const exec = promisify(execFile);
const TRANSPORT_URL = process.env.BERTH_TEST_TRANSPORT_URL ?? AMQP_URL.replace(/^amqp:/, 'rabbit:') + '/';
const LABEL_HOST = 'org.openstack.berth.host';
/** What the data written in the guest changes: this many KiB of random bytes. */
const WRITTEN_KIB = 2048;
/** Above the changed layer, the archive's configs, headers and tar padding: a small, fixed bound. */
const OVERHEAD_BYTES = 64 * 1024;

interface Node {
  host: string;
  agent: RunningAgent;
  driver: DriverProcess;
}
interface Shown {
  uuid: string;
  host: string;
  vm_state: string;
  task_state: string | null;
  flavor: { memory_mb: number };
  migration: { uuid: string; status: string; source_compute: string; dest_compute: string; transferred_bytes: number | null } | null;
}

/**
 * Two standalone compute nodes on one machine, each with its own database and agent, sharing the
 * broker, the image service and dockerd (so both ends of a move live on one engine): a cold
 * migration and a resize between them through the berth CLI, confirmed and reverted, with the
 * guest's data checked on the far side and the bytes that crossed measured.
 */
describe('moves between two nodes: berth server migrate / resize --host, confirm and revert', function () {
  this.timeout(240_000);
  const id = randomUUID().slice(0, 8);
  const exchange = `berth-move-${id}`;
  const hosts = [`mv1-${id}`, `mv2-${id}`] as const;
  let state: string;
  let images: ImageServiceHandle | undefined;
  const nodes: Node[] = [];
  let peer: AmqpPeer | undefined;
  let imageId: string;
  let uuid: string;
  let checksum: string;

  before(async () => {
    state = mkdtempSync(join(tmpdir(), 'berth-move-'));
    const shared = await startSharedImages(state);
    images = shared.images;
    imageId = shared.image.id;
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
      const driver = await spawnDriverProcess(
        {
          BERTH__DEFAULT__HOST: host,
          BERTH__DEFAULT__CONTROL_EXCHANGE: exchange,
          BERTH__DEFAULT__STATE_PATH: dir,
          BERTH__DEFAULT__TRANSPORT_URL: TRANSPORT_URL,
          BERTH__GLANCE__API_URL: images.url,
          BERTH__AGENT__URL: agent.url,
          BERTH__AGENT__TOKEN: agent.token,
          BERTH__COMPUTE__VCPUS: '4',
          BERTH__COMPUTE__MEMORY_MB: '2048',
        },
        dir,
        join(state, `${host}.log`),
      );
      nodes.push({ host, agent, driver });
    }
    peer = await AmqpPeer.open();
  });

  after(async () => {
    await peer?.close();
    for (const n of nodes) await n.driver.kill('SIGTERM');
    if (uuid) await removeContainers(await containersWithLabel(`${LABEL_INSTANCE}=${uuid}`).catch(() => []));
    for (const n of nodes) await n.agent.close();
    await images?.close();
    if (!process.env.BERTH_TEST_KEEP) rmSync(state, { recursive: true, force: true });
  });

  /** The berth CLI of the first node ([DEFAULT] host mv1), as an operator there runs it. */
  async function berth(...args: string[]): Promise<string> {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      BERTH_FROM_SOURCE: '1',
      BERTH_CONFIG: '',
      BERTH__DEFAULT__CONTROL_EXCHANGE: exchange,
      BERTH__DEFAULT__TRANSPORT_URL: TRANSPORT_URL,
      BERTH__DEFAULT__STATE_PATH: state,
      BERTH__DEFAULT__HOST: hosts[0],
      BERTH__GLANCE__API_URL: images!.url,
    };
    try {
      return (await exec(join(ROOT, 'tools', 'berth'), args, { env, timeout: 200_000 })).stdout;
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      throw new Error(`berth ${args.join(' ')} failed: ${e.stderr ?? ''}${e.stdout ?? ''}`);
    }
  }
  const show = async (host: string): Promise<Shown> => JSON.parse(await berth('--host', host, '-f', 'json', 'server', 'show', uuid)) as Shown;
  const berthCall = async <T>(host: string, method: string): Promise<T> => {
    const { reply } = await peer!.call(exchange, `compute.${host}`, { method, namespace: 'berth', version: '1.0', args: {} }, 30_000);
    assert.equal(reply.failure, null, String(reply.failure));
    return reply.result as T;
  };
  /** The instance's container of each host, as dockerd has them. */
  const containers = async (): Promise<Record<string, LabelledContainer | undefined>> => {
    const all = await containersWithLabel(`${LABEL_INSTANCE}=${uuid}`);
    return Object.fromEntries(hosts.map((h) => [h, all.find((c) => c.Labels[LABEL_HOST] === h)]));
  };
  const sh = async (c: LabelledContainer, script: string): Promise<string> => (await exec('docker', ['exec', c.Id, 'sh', '-c', script])).stdout.trim();

  it('boots an instance on the first node and writes data into it', async () => {
    const created = JSON.parse(
      await berth('-f', 'json', 'server', 'create', '--image', imageId, '--flavor-vcpus', '1', '--flavor-ram', '64', '--name', `mv-${id}`, '--wait'),
    ) as { id: string; status: string };
    uuid = created.id;
    assert.equal(created.status, 'ACTIVE');
    const mine = (await containers())[hosts[0]]!;
    assert.ok(mine, 'a container on the first node');
    checksum = await sh(mine, `dd if=/dev/urandom of=/data.bin bs=1k count=${WRITTEN_KIB} 2>/dev/null && echo moved > /marker && md5sum /data.bin`);
  });

  it('migrates it to the second node: the data is there, only the changed layer crossed, both containers kept', async () => {
    const out = JSON.parse(await berth('--host', hosts[1], '-f', 'json', 'server', 'migrate', uuid, '--wait')) as { host: string };
    assert.equal(out.host, hosts[1]);
    const s = await show(hosts[1]);
    assert.equal(s.vm_state, 'resized');
    assert.equal(s.migration?.status, 'finished');
    assert.equal(s.migration?.source_compute, hosts[0]);
    const sent = s.migration!.transferred_bytes!;
    // At least the data written, at most that plus the archive's own small overhead: no base image layer crossed.
    assert.ok(sent >= WRITTEN_KIB * 1024, `sent ${sent} bytes`);
    assert.ok(sent <= WRITTEN_KIB * 1024 + OVERHEAD_BYTES, `sent ${sent} bytes, over the changed layer plus ${OVERHEAD_BYTES}`);
    const c = await containers();
    assert.equal(c[hosts[0]]?.State, 'exited', "the source's container is kept, stopped, until confirm");
    assert.equal(c[hosts[1]]?.State, 'running');
    assert.equal(await sh(c[hosts[1]]!, 'cat /marker && md5sum /data.bin'), `moved\n${checksum}`);
    // Neither node's power-state sync touches the other's container of the same instance.
    for (const h of hosts) await berthCall(h, 'sync_power_states');
    const after = await containers();
    assert.equal(after[hosts[0]]?.Id, c[hosts[0]]!.Id);
    assert.equal(after[hosts[1]]?.Id, c[hosts[1]]!.Id);
    assert.deepEqual(
      (await berthCall<Array<{ uuid: string }>>(hosts[0], 'list_instances')).map((i) => i.uuid),
      [],
    );
  });

  it('confirms: the source container is gone, the instance is active on the second node', async () => {
    await berth('--host', hosts[1], 'server', 'resize-confirm', uuid, '--wait');
    const s = await show(hosts[1]);
    assert.equal(s.vm_state, 'active');
    assert.equal(s.host, hosts[1]);
    assert.equal(s.migration?.status, 'confirmed');
    const c = await containers();
    assert.equal(c[hosts[0]], undefined);
    assert.equal(c[hosts[1]]?.State, 'running');
  });

  it('resizes it back onto the first node, then reverts: the original runs again on the second, with its data', async () => {
    const before = (await containers())[hosts[1]]!;
    await berth('--host', hosts[0], 'server', 'resize', uuid, '--from', hosts[1], '--flavor-vcpus', '1', '--flavor-ram', '128', '--wait');
    const resized = await show(hosts[0]);
    assert.equal(resized.vm_state, 'resized');
    assert.equal(resized.flavor.memory_mb, 128);
    const during = await containers();
    assert.equal(during[hosts[0]]?.State, 'running');
    assert.equal(await sh(during[hosts[0]]!, 'cat /marker'), 'moved');

    await berth('--host', hosts[0], 'server', 'resize-revert', uuid, '--wait');
    const s = await show(hosts[1]);
    assert.equal(s.vm_state, 'active');
    assert.equal(s.host, hosts[1]);
    assert.equal(s.flavor.memory_mb, 64);
    assert.equal(s.migration?.status, 'reverted');
    const c = await containers();
    assert.equal(c[hosts[0]], undefined, "the destination's container is removed");
    assert.equal(c[hosts[1]]?.Id, before.Id, 'the original container runs again');
    assert.equal(c[hosts[1]]?.State, 'running');
    assert.equal(await sh(c[hosts[1]]!, 'cat /marker && md5sum /data.bin'), `moved\n${checksum}`);
    assert.match(readFileSync(join(state, `${hosts[1]}.log`), 'utf8'), /filesystem sent through the image store/);
  });
});
