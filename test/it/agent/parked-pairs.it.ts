import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createAgentClient } from '../../../agent/client/http.js';
import type { AgentClient, InstanceSpec, VifSpec } from '../../../agent/client/types.js';
import { startAgent, type RunningAgent } from '../../../agent/main.js';
import { NeutronPlumber, parkedName } from '../../../agent/network/neutron-vifs.js';
import { LABEL_PROJECT } from '../../../agent/runtime/types.js';
import { silentLogger } from '../../../common/log.js';
import type { Config } from '../../../conf/index.js';
import { loadConfig } from '../../../conf/load.js';
import { FakeImageService } from '../../fakes/glance-images.js';
import { DOCKER_URL, TEST_IMAGE, execWithStatus, imageIdOf, removeLabelled, saveImage } from './docker-helpers.js';

const run = promisify(execFile);
const IP = '/usr/sbin/ip';
const PROJECT = `berth-it-parked-${randomUUID().slice(0, 8)}`;

const exists = (dev: string) =>
  stat(`/sys/class/net/${dev}`).then(
    () => true,
    () => false,
  );

function newVif(n: number): VifSpec {
  const portId = randomUUID();
  return {
    portId,
    tap: `tap${portId}`.slice(0, 14),
    bridge: `brq${randomUUID()}`.slice(0, 14),
    mac: `fa:16:3e:5b:0${n}:01`,
    mtu: 1450,
    addresses: [{ address: `10.199.1${n}.5`, prefix: 24 }],
    gateway: null,
    routes: [],
    dns: [],
  };
}

/**
 * A create on Neutron ports parks the guest end of each pair in the host's namespace until the
 * container runs (NeutronPlumber.prepare). An agent that dies in between leaves the pair; the
 * agent started again removes this host's parked pairs whose instance has no container or one
 * that does not run, moves a running container's parked end in, and leaves alone the pairs of
 * running instances and the parked ends another agent on the same kernel (another host) is
 * making. Real veth pairs, real dockerd; the brq bridges are made by the plug (no Neutron needed).
 */
describe('berth-agent: pairs parked by creates that never finished are removed at start-up (kernel, dockerd)', function () {
  this.timeout(180_000);
  const host = `it-parked-${randomUUID().slice(0, 8)}`;
  const store = new FakeImageService();
  const vifs = { live: newVif(1), stopped: newVif(2), ghost: newVif(3), other: newVif(4), crashed: newVif(5), twin: newVif(6) };
  let stateDir: string;
  let config: Config;
  let agent: RunningAgent | undefined;
  let client: AgentClient;
  let glanceId: string;

  const spec = (vif: VifSpec, name: string): InstanceSpec => ({
    image_id: glanceId,
    flavor: { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} },
    name,
    hostname: name,
    project_id: PROJECT,
    user_id: 'tester',
    metadata: {},
    user_data: null,
    key_data: null,
    fixed_ip: null,
    vifs: [vif],
  });
  const start = async () => {
    agent = await startAgent(config, { images: store, log: silentLogger() });
    client = createAgentClient({ url: agent.url, token: agent.token, retries: 1 });
  };
  const guestHas = async (uuid: string, address: string): Promise<boolean> => {
    const r = await execWithStatus(`berth-${uuid}`, ['ip', '-o', 'addr', 'show', 'eth0']);
    return r.exitCode === 0 && r.output.includes(`inet ${address}/24`);
  };
  const until = async (what: string, ok: () => Promise<boolean>): Promise<void> => {
    for (let i = 0; i < 300 && !(await ok()); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(await ok(), what);
  };

  before(async () => {
    glanceId = randomUUID();
    store.add(glanceId, { docker_image_id: await imageIdOf(TEST_IMAGE) }, () => saveImage(TEST_IMAGE));
    stateDir = mkdtempSync(join(tmpdir(), 'berth-agent-parked-it-'));
    config = loadConfig({
      env: {},
      overrides: {
        DEFAULT: { state_path: stateDir, host },
        agent: { listen: '127.0.0.1:0', token: '' },
        docker: { host_url: DOCKER_URL, stop_timeout: 2 },
      },
    });
  });

  after(async () => {
    await agent?.close();
    await removeLabelled(`${LABEL_PROJECT}=${PROJECT}`);
    for (const v of Object.values(vifs)) {
      await run(IP, ['link', 'del', v.tap]).catch(() => undefined);
      await run(IP, ['link', 'del', v.bridge]).catch(() => undefined);
    }
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it("removes this host's parked pairs of instances with no running container; keeps live pairs and another host's parked end; moves a running container's in", async () => {
    await start();
    const live = await client.createInstance(randomUUID(), spec(vifs.live, 'live'));
    const stopped = await client.createInstance(randomUUID(), spec(vifs.stopped, 'stopped'));
    const crashed = await client.createInstance(randomUUID(), spec(vifs.crashed, 'crashed'));
    await until('the live instance is plugged', () => guestHas(live.uuid, '10.199.11.5'));
    await client.instanceAction(stopped.uuid, { action: 'stop' });
    await agent!.close();
    agent = undefined;

    // What creates cut short by the agent's death leave: this host's pairs parked for an
    // instance that never got a container, for one created but not started, and for a running
    // one whose end was not moved in yet (its pair from before is gone: a new start).
    const mine = new NeutronPlumber(host, stateDir);
    const ghost = randomUUID();
    await mine.prepare(ghost, vifs.ghost);
    await mine.prepare(stopped.uuid, vifs.stopped);
    await run(IP, ['link', 'del', vifs.crashed.tap]);
    await mine.prepare(crashed.uuid, vifs.crashed);
    // Another agent on this kernel (another compute host) is making this one right now.
    const theirs = new NeutronPlumber(`${host}-other`);
    await theirs.prepare(randomUUID(), vifs.other);
    // And one of the same host name with its own state directory (two agents that both kept the
    // machine's name): its ends are not this agent's either.
    const twin = new NeutronPlumber(host, `${stateDir}-twin`);
    await twin.prepare(randomUUID(), vifs.twin);
    mine.close();
    theirs.close();
    twin.close();
    for (const v of [vifs.ghost, vifs.stopped, vifs.crashed, vifs.other, vifs.twin]) assert.ok(await exists(parkedName(v.tap)), `${v.tap} parked`);
    assert.match(await readFile(`/sys/class/net/${parkedName(vifs.ghost.tap)}/ifalias`, 'utf8'), new RegExp(`^berth-parked [0-9a-f]{12} ${ghost}`));

    await start();
    await until('the parked pair of an instance without a container is removed', async () => !(await exists(vifs.ghost.tap)));
    await until('the parked pair of a stopped instance is removed', async () => !(await exists(vifs.stopped.tap)));
    assert.equal(await exists(parkedName(vifs.ghost.tap)), false);
    assert.equal(await exists(parkedName(vifs.stopped.tap)), false);
    await until("a running instance's parked end is moved in", () => guestHas(crashed.uuid, '10.199.15.5'));
    assert.equal(await exists(parkedName(vifs.crashed.tap)), false);

    assert.ok(await exists(vifs.live.tap), "the live instance's pair survives");
    assert.ok(await guestHas(live.uuid, '10.199.11.5'));
    assert.ok(await exists(parkedName(vifs.other.tap)), "another host's parked end survives");
    assert.ok(await exists(vifs.other.tap));
    assert.ok(await exists(parkedName(vifs.twin.tap)), 'the parked end of another agent of the same host name survives');

    // The stopped instance gets a new pair when it starts.
    await client.instanceAction(stopped.uuid, { action: 'start' });
    await until('the restarted instance is plugged', () => guestHas(stopped.uuid, '10.199.12.5'));
  });
});
