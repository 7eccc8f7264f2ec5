import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createAgentClient } from '../../../agent/client/http.js';
import type { AgentClient, InstanceSpec, VifSpec } from '../../../agent/client/types.js';
import { startAgent, type RunningAgent } from '../../../agent/main.js';
import { LABEL_PROJECT } from '../../../agent/runtime/types.js';
import { silentLogger } from '../../../common/log.js';
import { type Config } from '../../../conf/index.js';
import { loadConfig } from '../../../conf/load.js';
import { FakeImageService } from '../../fakes/glance-images.js';
import { DOCKER_URL, TEST_IMAGE, docker, execIn, execWithStatus, imageIdOf, removeLabelled, saveImage } from './docker-helpers.js';

const run = promisify(execFile);
const PROJECT = `berth-it-vifs-${randomUUID().slice(0, 8)}`;

/**
 * An instance on a Neutron bridge VIF, as the compute side hands it to the agent, on a real
 * dockerd: eth0 with the port's MAC and address, the subnet's DNS server as its resolver, and
 * plugged again after every start, including one made while the agent was down. The network's
 * brq bridge is made by the plug itself (as when the linuxbridge agent has not made it yet), so
 * no Neutron is needed here; test/it/neutron/ has the same on the real one.
 */
describe('berth-agent: instances on Neutron VIFs (dockerd)', function () {
  this.timeout(180_000);
  let stateDir: string;
  let config: Config;
  let agent: RunningAgent;
  let client: AgentClient;
  let glanceId: string;
  const store = new FakeImageService();
  const portId = randomUUID();
  const vif: VifSpec = {
    portId,
    tap: `tap${portId}`.slice(0, 14),
    bridge: `brq${randomUUID()}`.slice(0, 14),
    mac: 'fa:16:3e:5a:01:02',
    mtu: 1450,
    addresses: [{ address: '10.199.7.23', prefix: 24 }],
    gateway: '10.199.7.1',
    routes: [],
    dns: ['10.199.7.2'],
  };
  const spec = (): InstanceSpec => ({
    image_id: glanceId,
    flavor: { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} },
    name: 'vif-vm',
    hostname: 'vif-guest',
    project_id: PROJECT,
    user_id: 'tester',
    metadata: {},
    user_data: null,
    key_data: null,
    fixed_ip: null,
    vifs: [vif],
  });
  const port2 = randomUUID();
  const vif2: VifSpec = {
    portId: port2,
    tap: `tap${port2}`.slice(0, 14),
    bridge: `brq${randomUUID()}`.slice(0, 14),
    mac: 'fa:16:3e:5a:01:03',
    mtu: 1450,
    addresses: [{ address: '10.199.8.40', prefix: 24 }],
    gateway: null,
    routes: [],
    dns: [],
  };
  const exists = (tap: string) =>
    stat(`/sys/class/net/${tap}`).then(
      () => true,
      () => false,
    );
  const tapExists = () =>
    stat(`/sys/class/net/${vif.tap}`).then(
      () => true,
      () => false,
    );

  before(async () => {
    glanceId = randomUUID();
    store.add(glanceId, { docker_image_id: await imageIdOf(TEST_IMAGE) }, () => saveImage(TEST_IMAGE));
    stateDir = mkdtempSync(join(tmpdir(), 'berth-agent-vifs-it-'));
    config = loadConfig({
      env: {},
      overrides: {
        DEFAULT: { state_path: stateDir },
        agent: { listen: '127.0.0.1:0', token: '' },
        docker: { host_url: DOCKER_URL, stop_timeout: 2 },
      },
    });
    agent = await startAgent(config, { images: store, log: silentLogger() });
    client = createAgentClient({ url: agent.url, token: agent.token, retries: 1 });
  });

  after(async () => {
    await agent?.close();
    await removeLabelled(`${LABEL_PROJECT}=${PROJECT}`);
    for (const v of [vif, vif2]) {
      await run('/usr/sbin/ip', ['link', 'del', v.tap]).catch(() => undefined);
      await run('/usr/sbin/ip', ['link', 'del', v.bridge]).catch(() => undefined);
    }
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it('plugs eth0 with the port MAC and address and the DNS server; plugs it again after every start, also one made while the agent was down; delete leaves no tap', async () => {
    const status = await client.createInstance(randomUUID(), spec());
    assert.equal(status.ip_address, '10.199.7.23');
    const name = `berth-${status.uuid}`;
    const plugged = async (): Promise<boolean> => {
      const r = await execWithStatus(name, ['ip', '-o', 'addr', 'show', 'eth0']);
      return r.exitCode === 0 && r.output.includes('inet 10.199.7.23/24');
    };
    const waitPlugged = async (when: string): Promise<void> => {
      for (let i = 0; i < 150 && !(await plugged()); i++) await new Promise((r) => setTimeout(r, 100));
      assert.ok(await plugged(), `eth0 has 10.199.7.23 ${when}`);
      assert.ok(await tapExists(), `tap on the host ${when}`);
    };
    await waitPlugged('after the create');
    assert.match(await execIn(name, ['cat', '/sys/class/net/eth0/address']), /fa:16:3e:5a:01:02/);
    assert.match(await execIn(name, ['cat', '/sys/class/net/eth0/mtu']), /1450/);
    assert.match(await execIn(name, ['cat', '/etc/resolv.conf']), /^nameserver 10\.199\.7\.2$/m);
    assert.match(await execIn(name, ['ip', 'route']), /^default via 10\.199\.7\.1 dev eth0/m);
    const { stdout: master } = await run('/usr/sbin/ip', ['-o', 'link', 'show', vif.tap]);
    assert.match(master, new RegExp(`master ${vif.bridge}`));

    await client.instanceAction(status.uuid, { action: 'reboot', hard: true });
    await waitPlugged('after a hard reboot');
    // Started behind the agent's back: the engine's start event has the agent plug it in.
    await docker('POST', `/containers/${name}/stop?t=0`);
    await docker('POST', `/containers/${name}/start`);
    await waitPlugged('after a docker start the agent did not make');

    // Restarted while the agent is down: the agent plugs it when it comes back.
    await agent.close();
    await docker('POST', `/containers/${name}/restart?t=0`);
    // The kernel removes a veth whose peer's namespace is gone asynchronously.
    for (let i = 0; i < 100 && (await tapExists()); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await tapExists(), false, 'the tap went with the old namespace');
    agent = await startAgent(config, { images: store, log: silentLogger() });
    client = createAgentClient({ url: agent.url, token: agent.token, retries: 1 });
    await waitPlugged('after an agent restart');

    await client.deleteInstance(status.uuid, { timeout: 0 });
    for (let i = 0; i < 100 && (await tapExists()); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await tapExists(), false, 'no tap after delete');
  });

  it('attaches a second VIF to the running instance as eth1 (plugged at once, and again after a reboot and an agent restart); detach removes it for good; delete removes every tap itself', async () => {
    const status = await client.createInstance(randomUUID(), spec());
    const name = `berth-${status.uuid}`;
    const has = async (dev: string, addr: string): Promise<boolean> => {
      const r = await execWithStatus(name, ['ip', '-o', 'addr', 'show', dev]);
      return r.exitCode === 0 && r.output.includes(`inet ${addr}/`);
    };
    const until = async (ok: () => Promise<boolean>, what: string): Promise<void> => {
      for (let i = 0; i < 150 && !(await ok()); i++) await new Promise((r) => setTimeout(r, 100));
      assert.ok(await ok(), what);
    };
    await until(() => has('eth0', '10.199.7.23'), 'eth0 plugged after the create');

    assert.deepEqual(await client.attachVif(status.uuid, vif2), { port_id: port2, ifname: 'eth1' });
    assert.ok(await has('eth1', '10.199.8.40'), 'eth1 has the attached port address at once');
    assert.match(await execIn(name, ['cat', '/sys/class/net/eth1/address']), /fa:16:3e:5a:01:03/);
    const { stdout: master } = await run('/usr/sbin/ip', ['-o', 'link', 'show', vif2.tap]);
    assert.match(master, new RegExp(`master ${vif2.bridge}`));
    assert.deepEqual(await client.attachVif(status.uuid, vif2), { port_id: port2, ifname: 'eth1' }, 'a repeat changes nothing');

    await client.instanceAction(status.uuid, { action: 'reboot', hard: true });
    await until(async () => (await has('eth0', '10.199.7.23')) && (await has('eth1', '10.199.8.40')), 'both plugged again after a hard reboot');
    await agent.close();
    await docker('POST', `/containers/${name}/restart?t=0`);
    agent = await startAgent(config, { images: store, log: silentLogger() });
    client = createAgentClient({ url: agent.url, token: agent.token, retries: 1 });
    await until(async () => (await has('eth0', '10.199.7.23')) && (await has('eth1', '10.199.8.40')), 'both plugged again by a restarted agent');

    await client.detachVif(status.uuid, port2);
    assert.equal(await exists(vif2.tap), false, 'the tap is removed by the detach');
    assert.equal((await execWithStatus(name, ['ip', 'link', 'show', 'eth1'])).exitCode !== 0, true, 'no eth1 in the guest');
    await client.detachVif(status.uuid, port2);
    await client.instanceAction(status.uuid, { action: 'reboot', hard: true });
    await until(() => has('eth0', '10.199.7.23'), 'eth0 plugged after the reboot');
    assert.equal(await exists(vif2.tap), false, 'a detached VIF is not plugged again');

    assert.deepEqual(await client.attachVif(status.uuid, vif2), { port_id: port2, ifname: 'eth1' });
    await client.deleteInstance(status.uuid, { timeout: 0 });
    // Removed by the delete itself, not later by the kernel with the namespace.
    assert.equal(await exists(vif.tap), false, 'no eth0 tap right after delete');
    assert.equal(await exists(vif2.tap), false, 'no eth1 tap right after delete');
    await assert.rejects(client.attachVif(status.uuid, vif2), (err: unknown) => (err as { code?: string }).code === 'INSTANCE_NOT_FOUND');
  });

  it("standalone caller VIFs: plugs eth0 into an existing bridge a caller names, with the VIF's MAC and address; refuses a bridge that does not exist, and the engine's own bridges", async () => {
    const bridge = `brbt${randomUUID().slice(0, 8)}`;
    await run('/usr/sbin/ip', ['link', 'add', bridge, 'type', 'bridge']);
    try {
      const port = randomUUID();
      const callerVif: VifSpec = {
        ...vif2,
        portId: port,
        tap: `tap${port}`.slice(0, 14),
        bridge,
        mac: 'fa:16:3e:5a:01:09',
        addresses: [{ address: '192.168.77.9', prefix: 24 }],
      };
      const status = await client.createInstance(randomUUID(), { ...spec(), vifs: [callerVif] });
      const name = `berth-${status.uuid}`;
      for (let i = 0; i < 150 && !(await exists(callerVif.tap)); i++) await new Promise((r) => setTimeout(r, 100));
      const { stdout: master } = await run('/usr/sbin/ip', ['-o', 'link', 'show', callerVif.tap]);
      assert.match(master, new RegExp(`master ${bridge}`));
      assert.match(await execIn(name, ['ip', '-o', 'addr', 'show', 'eth0']), /inet 192\.168\.77\.9\/24/);
      assert.match(await execIn(name, ['cat', '/sys/class/net/eth0/address']), /fa:16:3e:5a:01:09/);
      await client.deleteInstance(status.uuid, { timeout: 0 });
      assert.equal(await exists(callerVif.tap), false, 'no tap after delete');

      const missing = { ...callerVif, bridge: `brbt${randomUUID().slice(0, 8)}` };
      await assert.rejects(client.createInstance(randomUUID(), { ...spec(), vifs: [missing] }), /does not exist/);
      assert.equal(await exists(missing.bridge), false, 'a bridge a caller names is never made');
      for (const own of ['docker0', 'br-0123456789ab'])
        await assert.rejects(
          client.createInstance(randomUUID(), { ...spec(), vifs: [{ ...callerVif, bridge: own }] }),
          (err: unknown) => (err as { code?: string }).code === 'INVALID_INPUT',
        );
    } finally {
      await run('/usr/sbin/ip', ['link', 'del', bridge]).catch(() => undefined);
    }
  });
});
