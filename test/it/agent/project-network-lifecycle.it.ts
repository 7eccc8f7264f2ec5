import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { InstanceSpec } from '../../../agent/client/types.js';
import { projectNetworkName } from '../../../agent/network/project-networks.js';
import { LABEL_HOST, LABEL_PROJECT } from '../../../agent/runtime/types.js';
import { rmSync } from 'node:fs';
import { parseEndpoint, requestJson } from '../../../common/http-client.js';
import { docker, removeNetworks, startTestAgent, type TestAgent } from './docker-helpers.js';

const RUN = randomUUID().slice(0, 8);
const PROJECT = `berth-it-netlife-${RUN}`;
const OTHER = `berth-it-netlife-other-${RUN}`;

interface DockerNetwork {
  Name: string;
  Labels: Record<string, string>;
}

/**
 * Project networks on the real dockerd follow their instances: removed with the last one,
 * recreated when removed behind the agent's back, labelled with the host that made them, and
 * never pruned by another host's agent on the same engine.
 */
describe('berth-agent project network lifecycle on dockerd', function () {
  this.timeout(120_000);
  const host = `netlife-${RUN}`;
  let t: TestAgent;
  const spec = (project: string): InstanceSpec => ({
    image_id: t.baseGlanceId,
    flavor: { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} },
    name: 'netlife',
    hostname: 'netlife',
    project_id: project,
    user_id: 'tester',
    metadata: {},
    user_data: null,
    key_data: null,
    fixed_ip: null,
  });
  const network = async (project: string) => {
    const res = await docker<DockerNetwork>('GET', `/networks/${projectNetworkName(project)}`, undefined, [404]);
    return res.status === 404 ? null : res.body;
  };

  before(async () => {
    t = await startTestAgent({ DEFAULT: { host } });
  });
  after(async () => {
    await removeNetworks([projectNetworkName(OTHER)]);
    await t?.close(PROJECT, []);
  });

  it("labels the network with its host and removes it with the project's last instance", async () => {
    const a = await t.client.createInstance(randomUUID(), spec(PROJECT));
    const b = await t.client.createInstance(randomUUID(), spec(PROJECT));
    assert.equal((await network(PROJECT))?.Labels[LABEL_HOST], host);
    await t.client.deleteInstance(a.uuid, { timeout: 0 });
    assert.ok(await network(PROJECT), 'one instance is left');
    await t.client.deleteInstance(b.uuid, { timeout: 0 });
    assert.equal(await network(PROJECT), null);
  });

  it('recreates a network removed behind its back, with no restart', async () => {
    const a = await t.client.createInstance(randomUUID(), spec(PROJECT));
    // An operator's `docker network rm` (the agent's containers are no engine endpoints of it).
    await docker('DELETE', `/networks/${projectNetworkName(PROJECT)}`);
    const b = await t.client.createInstance(randomUUID(), spec(PROJECT));
    assert.equal(b.power_state, 'running');
    assert.ok(await network(PROJECT), 'the network is back');
    await t.client.deleteInstance(a.uuid, { timeout: 0 });
    await t.client.deleteInstance(b.uuid, { timeout: 0 });
  });

  it("leaves another host's unused network alone, at start-up and on prune", async () => {
    // An unused network another compute host sharing this dockerd made.
    await docker('POST', '/networks/create', {
      Name: projectNetworkName(OTHER),
      CheckDuplicate: true,
      Driver: 'bridge',
      IPAM: { Driver: 'default', Config: [{ Subnet: '10.254.77.0/24', Gateway: '10.254.77.1' }] },
      Labels: { [LABEL_PROJECT]: OTHER, [LABEL_HOST]: `someone-else-${RUN}` },
    });
    const second = await startTestAgent({ DEFAULT: { host: `netlife-second-${RUN}` } });
    try {
      assert.ok(await network(OTHER), 'not pruned at start-up by another host');
      const pruned = await requestJson<{ removed: string[] }>(parseEndpoint(second.agent.url), {
        method: 'POST',
        path: '/v1/networks/prune',
        headers: { authorization: `Bearer ${second.agent.token}` },
      });
      assert.ok(!pruned.body.removed.includes(OTHER));
    } finally {
      await second.agent.close();
      rmSync(second.stateDir, { recursive: true, force: true });
    }
    assert.ok(await network(OTHER));
  });
});
