import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAgentClient } from '../../../agent/client/http.js';
import type { AgentClient, InstanceSpec, InstanceStatus } from '../../../agent/client/types.js';
import { startAgent, type RunningAgent } from '../../../agent/main.js';
import { projectNetworkName } from '../../../agent/network/project-networks.js';
import { LABEL_PROJECT } from '../../../agent/runtime/types.js';
import { requestJson, parseEndpoint } from '../../../common/http-client.js';
import { silentLogger } from '../../../common/log.js';
import { type Config } from '../../../conf/index.js';
import { loadConfig } from '../../../conf/load.js';
import { FakeImageService } from '../../fakes/glance-images.js';
import { DOCKER_URL, TEST_IMAGE, docker, execIn, execWithStatus, imageIdOf, removeLabelled, removeNetworks, saveImage } from './docker-helpers.js';

const RUN = randomUUID().slice(0, 8);
const PROJECT_A = `berth-it-net-a-${RUN}`;
const PROJECT_B = `berth-it-net-b-${RUN}`;

/** Config drive, keys and per-project networks, seen from inside real containers. */
describe('berth-agent identity and project networks on dockerd', function () {
  this.timeout(120_000);
  let stateDir: string;
  let config: Config;
  let agent: RunningAgent;
  let client: AgentClient;
  let glanceId: string;
  const store = new FakeImageService();

  const spec = (project: string, overrides: Partial<InstanceSpec> = {}): InstanceSpec => ({
    image_id: glanceId,
    flavor: { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} },
    name: 'net-vm',
    hostname: 'net-guest',
    project_id: project,
    user_id: 'tester',
    metadata: {},
    user_data: null,
    key_data: null,
    fixed_ip: null,
    ...overrides,
  });
  const cat = async (uuid: string, path: string): Promise<string> => execIn(`berth-${uuid}`, ['cat', path]);
  const api = <T>(method: string, path: string) =>
    requestJson<T>(parseEndpoint(agent.url), { method, path, headers: { authorization: `Bearer ${agent.token}` } }, 'agent');
  const cleanup = async (): Promise<void> => {
    await removeLabelled(`${LABEL_PROJECT}=${PROJECT_A}`);
    await removeLabelled(`${LABEL_PROJECT}=${PROJECT_B}`);
    await removeNetworks([projectNetworkName(PROJECT_A), projectNetworkName(PROJECT_B)]);
  };

  before(async () => {
    glanceId = randomUUID();
    store.add(glanceId, { docker_image_id: await imageIdOf(TEST_IMAGE) }, () => saveImage(TEST_IMAGE));
    stateDir = mkdtempSync(join(tmpdir(), 'berth-agent-net-it-'));
    config = loadConfig({
      env: {},
      overrides: {
        DEFAULT: { state_path: stateDir },
        agent: { listen: '127.0.0.1:0', token: '', inject_ssh_keys: true },
        docker: { host_url: DOCKER_URL, stop_timeout: 2 },
      },
    });
    agent = await startAgent(config, { images: store, log: silentLogger() });
    client = createAgentClient({ url: agent.url, token: agent.token, retries: 1 });
  });

  after(async () => {
    await agent?.close();
    await cleanup();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it('mounts the config drive read-only in the OpenStack layout, with keys installed', async () => {
    const uuid = randomUUID();
    const userData = '#!/bin/sh\necho hello from user data\n';
    const status = await client.createInstance(
      uuid,
      spec(PROJECT_A, {
        name: 'drive-vm',
        hostname: 'drive-guest',
        metadata: { role: 'web' },
        key_name: 'it-key',
        key_data: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIItest it@berth',
        user_data: Buffer.from(userData).toString('base64'),
      }),
    );
    const meta = JSON.parse(await cat(uuid, '/run/berth/config/openstack/latest/meta_data.json')) as Record<string, unknown>;
    assert.equal(meta.uuid, uuid);
    assert.equal(meta.name, 'drive-vm');
    assert.equal(meta.hostname, 'drive-guest');
    assert.equal(meta.project_id, PROJECT_A);
    assert.equal(meta.launch_index, 0);
    assert.deepEqual(meta.public_keys, { 'it-key': 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIItest it@berth' });
    assert.deepEqual(meta.meta, { role: 'web' });
    assert.equal(await cat(uuid, '/run/berth/config/openstack/latest/user_data'), userData);

    const net = JSON.parse(await cat(uuid, '/run/berth/config/openstack/latest/network_data.json')) as {
      links: Array<{ ethernet_mac_address: string }>;
      networks: Array<{ ip_address: string }>;
      services: Array<{ type: string; address: string }>;
    };
    assert.equal(net.networks[0]?.ip_address, status.ip_address);
    // The resolvers it announces are the ones the guest's resolv.conf names.
    const resolvers = [...(await cat(uuid, '/etc/resolv.conf')).matchAll(/^nameserver\s+(\S+)/gm)].map((m) => m[1]);
    assert.deepEqual(
      net.services.map((s) => s.address),
      resolvers,
    );
    assert.match(await execIn(`berth-${uuid}`, ['ip', '-4', 'addr', 'show', 'eth0']), new RegExp(`inet ${status.ip_address!.replaceAll('.', '\\.')}/`));
    assert.equal((await cat(uuid, '/sys/class/net/eth0/address')).trim(), net.links[0]?.ethernet_mac_address);
    assert.equal(await cat(uuid, '/root/.ssh/authorized_keys'), 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIItest it@berth\n');

    const write = await execWithStatus(`berth-${uuid}`, ['sh', '-c', 'echo x > /run/berth/config/openstack/latest/user_data']);
    assert.notEqual(write.exitCode, 0);
    assert.match(write.output, /read-only/i);

    await client.deleteInstance(uuid, { timeout: 0 });
    assert.equal(existsSync(join(stateDir, 'instances', uuid)), false);
  });

  it("isolates projects: an instance reaches its own project's instances, not another project's", async () => {
    // Guests lack CAP_NET_RAW, so busybox ping cannot run; HTTP to busybox httpd shows reachability
    // instead. `timeout` bounds the blocked attempt (this busybox's `wget -T` crashes).
    const [a1, a2, b1] = await Promise.all([create(PROJECT_A), create(PROJECT_A), create(PROJECT_B)]);
    for (const s of [a2, b1]) await execIn(`berth-${s.uuid}`, ['httpd', '-p', '8080', '-h', '/run/berth/config']);
    const fetch = (from: InstanceStatus, to: InstanceStatus) =>
      execWithStatus(`berth-${from.uuid}`, ['timeout', '3', 'wget', '-q', '-O', '-', `http://${to.ip_address}:8080/openstack/latest/meta_data.json`]);

    const same = await fetch(a1, a2);
    assert.equal(same.exitCode, 0, same.output);
    assert.equal((JSON.parse(same.output) as { uuid: string }).uuid, a2.uuid);
    const other = await fetch(a1, b1);
    assert.notEqual(other.exitCode, 0, 'project A reached project B');

    const { body } = await api<{ networks: Array<{ project_id: string; subnet: string }> }>('GET', '/v1/networks');
    const subnetA = body.networks.find((n) => n.project_id === PROJECT_A)?.subnet;
    const subnetB = body.networks.find((n) => n.project_id === PROJECT_B)?.subnet;
    assert.ok(subnetA && subnetB && subnetA !== subnetB);
    assert.ok(a1.ip_address!.startsWith(subnetA.split('.').slice(0, 3).join('.')));
  });

  it('takes a fixed IP from the project subnet, keeps it across stop/start, refuses one outside', async () => {
    const { body } = await api<{ networks: Array<{ project_id: string; subnet: string }> }>('GET', '/v1/networks');
    const prefix = body.networks
      .find((n) => n.project_id === PROJECT_A)!
      .subnet.split('.')
      .slice(0, 3)
      .join('.');
    const uuid = randomUUID();
    const status = await client.createInstance(uuid, spec(PROJECT_A, { fixed_ip: `${prefix}.200` }));
    assert.equal(status.ip_address, `${prefix}.200`);
    assert.equal((await client.instanceAction(uuid, { action: 'stop', timeout: 0 })).ip_address, `${prefix}.200`);
    assert.equal((await client.instanceAction(uuid, { action: 'start' })).ip_address, `${prefix}.200`);
    await assert.rejects(
      client.createInstance(randomUUID(), spec(PROJECT_A, { fixed_ip: '192.0.2.10' })),
      (e: unknown) => (e as { code?: string; status?: number }).code === 'INVALID_INPUT' && (e as { status?: number }).status === 400,
    );
  });

  it('gives the guest its eth0, route and own name again after every start, whoever starts it', async () => {
    const status = await client.createInstance(randomUUID(), spec(PROJECT_A, { hostname: 'plug-guest' }));
    const name = `berth-${status.uuid}`;
    const ip = status.ip_address!;
    const { body } = await api<{ networks: Array<{ project_id: string; gateway: string }> }>('GET', '/v1/networks');
    const gateway = body.networks.find((n) => n.project_id === PROJECT_A)!.gateway;
    const plugged = async (): Promise<boolean> => {
      const r = await execWithStatus(name, ['ip', '-4', 'addr', 'show', 'eth0']);
      return r.exitCode === 0 && r.output.includes(`inet ${ip}/`);
    };
    const check = async (when: string): Promise<void> => {
      assert.ok(await plugged(), `eth0 has ${ip} ${when}`);
      assert.match(await execIn(name, ['ip', 'route']), new RegExp(`^default via ${gateway.replaceAll('.', '\\.')} dev eth0`, 'm'), when);
      assert.match(await cat(status.uuid, '/etc/hosts'), new RegExp(`^${ip.replaceAll('.', '\\.')}\\s+plug-guest$`, 'm'), when);
    };
    await check('after the create');
    await client.instanceAction(status.uuid, { action: 'stop', timeout: 0 });
    await client.instanceAction(status.uuid, { action: 'start' });
    await check('after stop and start');
    await client.instanceAction(status.uuid, { action: 'reboot', hard: true });
    await check('after a hard reboot');
    await client.instanceAction(status.uuid, { action: 'reboot', timeout: 0 });
    await check('after a soft reboot');
    // Started behind the agent's back: the engine's start event has the agent plug it in.
    await docker('POST', `/containers/${name}/stop?t=0`);
    await docker('POST', `/containers/${name}/start`);
    // Bounded wait for the engine's event to reach the agent; a loaded machine can take seconds.
    for (let i = 0; i < 300 && !(await plugged()); i++) await new Promise((r) => setTimeout(r, 100));
    await check('after a docker start the agent did not make');

    // The traffic counters come from the host end of the pair, as the guest sees them.
    await execWithStatus(name, ['timeout', '2', 'wget', '-q', '-O', '-', `http://${gateway}:9/`]);
    const stats = await client.instanceStats(status.uuid);
    assert.ok(stats.network.tx_packets > 0 && stats.network.tx_bytes > 0, JSON.stringify(stats.network));
    await client.deleteInstance(status.uuid, { timeout: 0 });
  });

  it("keeps instances and networks across an agent restart, then removes a project's network with its last instance", async () => {
    const before = (await client.listInstances()).filter((i) => i.project_id === PROJECT_A || i.project_id === PROJECT_B);
    await agent.close();
    agent = await startAgent(config, { images: store, log: silentLogger() });
    client = createAgentClient({ url: agent.url, token: agent.token, retries: 1 });
    const after = (await client.listInstances()).filter((i) => i.project_id === PROJECT_A || i.project_id === PROJECT_B);
    assert.deepEqual(after.map((i) => [i.uuid, i.ip_address, i.power_state]).sort(), before.map((i) => [i.uuid, i.ip_address, i.power_state]).sort());

    for (const i of after.filter((x) => x.project_id === PROJECT_B)) await client.deleteInstance(i.uuid, { timeout: 0 });
    const pruned = await api<{ removed: string[] }>('POST', '/v1/networks/prune');
    assert.ok(!pruned.body.removed.includes(PROJECT_A));
    assert.equal((await docker('GET', `/networks/${projectNetworkName(PROJECT_B)}`, undefined, [404])).status, 404);
    assert.equal((await docker('GET', `/networks/${projectNetworkName(PROJECT_A)}`)).status, 200);
  });

  async function create(project: string): Promise<InstanceStatus> {
    return client.createInstance(randomUUID(), spec(project));
  }
});
