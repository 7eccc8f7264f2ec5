import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAgentClient } from '../../../agent/client/http.js';
import type { AgentClient, InstanceSpec, InstanceStatus } from '../../../agent/client/types.js';
import { startAgent, type RunningAgent } from '../../../agent/main.js';
import { projectNetworkName } from '../../../agent/network/project-networks.js';
import { LABEL_PROJECT } from '../../../agent/runtime/types.js';
import { parseEndpoint, requestJson } from '../../../common/http-client.js';
import { silentLogger } from '../../../common/log.js';
import { loadConfig } from '../../../conf/load.js';
import { FakeImageService } from '../../fakes/glance-images.js';
import { DOCKER_URL, TEST_IMAGE, docker, execWithStatus, imageIdOf, removeLabelled, removeNetworks, saveImage } from './docker-helpers.js';

const PROJECT = `berth-it-restart-${randomUUID().slice(0, 8)}`;
const DEV_DIR = process.env.BERTH_DEV_DIR ?? '/var/lib/berth-dev';
const SERVICES = fileURLToPath(new URL('../../../tools/dev/services.sh', import.meta.url));

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, seconds: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${seconds}s`);
    await sleep(250);
  }
}

const dockerdUp = (): Promise<boolean> =>
  docker('GET', '/_ping').then(
    () => true,
    () => false,
  );

/** The dev services script, in its own session so a signal to this test's process group spares dockerd. */
function startServices(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [SERVICES, 'start'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`services.sh start exited ${code}: ${out.slice(-2000)}`))));
  });
}

/**
 * Restarts the shared dockerd, so it is one short test, alone in its file, and leaves dockerd
 * running whatever happens.
 */
describe('berth-agent across a dockerd restart', function () {
  this.timeout(240_000);
  const store = new FakeImageService();
  const dirs: string[] = [];
  const agents: RunningAgent[] = [];
  let glanceId: string;

  async function agentWith(restartPolicy: 'no' | 'unless-stopped'): Promise<{ agent: RunningAgent; client: AgentClient }> {
    const dir = mkdtempSync(join(tmpdir(), 'berth-agent-restart-it-'));
    dirs.push(dir);
    const config = loadConfig({
      env: {},
      overrides: {
        DEFAULT: { state_path: dir },
        agent: { listen: '127.0.0.1:0', token: '' },
        docker: { host_url: DOCKER_URL, stop_timeout: 1, restart_policy: restartPolicy },
      },
    });
    const agent = await startAgent(config, { images: store, log: silentLogger() });
    agents.push(agent);
    return { agent, client: createAgentClient({ url: agent.url, token: agent.token, retries: 0 }) };
  }

  const spec = (): InstanceSpec => ({
    image_id: glanceId,
    flavor: { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} },
    name: 'restart-vm',
    hostname: 'restart-guest',
    project_id: PROJECT,
    user_id: 'tester',
    metadata: {},
    user_data: null,
    key_data: null,
    fixed_ip: null,
  });

  before(async () => {
    glanceId = randomUUID();
    store.add(glanceId, { docker_image_id: await imageIdOf(TEST_IMAGE) }, () => saveImage(TEST_IMAGE));
  });

  after(async () => {
    if (!(await dockerdUp())) await startServices();
    for (const a of agents) await a.close();
    await removeLabelled(`${LABEL_PROJECT}=${PROJECT}`);
    await removeNetworks([projectNetworkName(PROJECT)]);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('answers 503 RUNTIME_UNAVAILABLE while dockerd is down, then reports states honestly', async () => {
    const plain = await agentWith('no');
    const sticky = await agentWith('unless-stopped');
    const stays = await plain.client.createInstance(randomUUID(), spec());
    const returns = await sticky.client.createInstance(randomUUID(), spec());
    const list = (): Promise<{ status: number; body: { instances?: InstanceStatus[]; error?: { code: string } } }> =>
      requestJson(parseEndpoint(plain.agent.url), { path: '/v1/instances', accept: [503], headers: { authorization: `Bearer ${plain.agent.token}` } }, 'agent');

    const pid = Number(readFileSync(join(DEV_DIR, 'dockerd.pid'), 'utf8').trim());
    assert.equal(readFileSync(`/proc/${pid}/comm`, 'utf8').trim(), 'dockerd', 'the pid file names the dev dockerd');
    process.kill(pid, 'SIGTERM');
    // Gone, not merely silent: a second dockerd refuses to start beside a dying one.
    await until('dockerd exits', 60, async () => {
      try {
        process.kill(pid, 0);
        return undefined;
      } catch {
        return true;
      }
    });

    const down = await list();
    assert.equal(down.status, 503);
    assert.equal(down.body.error?.code, 'RUNTIME_UNAVAILABLE');
    assert.deepEqual(await plain.client.health(), { ok: false, runtime: false });

    await startServices();
    const back = await until('the agent lists again', 60, async () => {
      const r = await list();
      return r.status === 200 ? r.body.instances! : undefined;
    });
    assert.equal(back.find((i) => i.uuid === stays.uuid)?.power_state, 'stopped');
    const returned = await until('the unless-stopped instance runs again', 30, async () => {
      const s = await sticky.client.getInstance(returns.uuid);
      return s?.power_state === 'running' ? s : undefined;
    });
    assert.equal(returned.ip_address, returns.ip_address);
    // The restarted engine brought it back without a network; the agent plugs it in again.
    const eth0 = await until('the returned instance has its address on eth0 again', 30, async () => {
      const r = await execWithStatus(`berth-${returns.uuid}`, ['ip', '-4', 'addr', 'show', 'eth0']);
      return r.exitCode === 0 && r.output.includes(`inet ${returns.ip_address}/`) ? r.output : undefined;
    });
    assert.ok(eth0);
  });
});
