import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { InstanceSpec } from '../../../agent/client/types.js';
import { LABEL_HOST, LABEL_IMAGE, LABEL_INSTANCE, LABEL_IPV4, LABEL_MAC, LABEL_NETWORK, LABEL_PROJECT } from '../../../agent/runtime/types.js';
import { DockerRuntime } from '../../../agent/runtime/docker.js';
import { API_VERSION, DOCKER_URL, TEST_IMAGE, docker, removeLabelled, saveImage, startTestAgent, type TestAgent } from './docker-helpers.js';

const PROJECT = 'berth-it-image-labels';

/** Labels an image carries under Berth's prefix never become the container's (real dockerd). */
describe("berth-agent on dockerd: an image's own Berth labels", function () {
  this.timeout(120_000);
  const hostile: Record<string, string> = {
    [LABEL_INSTANCE]: randomUUID(),
    [LABEL_PROJECT]: 'victim-project',
    [LABEL_IMAGE]: randomUUID(),
    [LABEL_HOST]: 'victim-host',
    [LABEL_NETWORK]: 'berth-victim-network',
    [LABEL_IPV4]: '10.213.7.7',
    [LABEL_MAC]: '02:42:0a:d5:07:07',
    'org.openstack.berth.future': 'x',
  };
  const images: string[] = [];
  let hostileImage: string;

  const spec = (image_id: string): InstanceSpec => ({
    image_id,
    flavor: { vcpus: 1, memory_mb: 48, root_gb: 1, swap: 0, extra_specs: {} },
    name: 'it-vm',
    hostname: 'it-labels',
    project_id: PROJECT,
    user_id: 'tester',
    metadata: {},
    user_data: null,
    key_data: null,
    fixed_ip: null,
  });

  before(async () => {
    await removeLabelled(`${LABEL_PROJECT}=${PROJECT}`);
    // A tenant's image: `LABEL org.openstack.berth.*=...` in its Dockerfile.
    const made = await docker<{ Id: string }>('POST', `/containers/create?name=berth-it-src-${randomUUID()}`, { Image: TEST_IMAGE });
    const changes = Object.entries(hostile)
      .map(([k, v]) => `LABEL ${k}=${v}`)
      .join('\n');
    const commit = await docker<{ Id: string }>('POST', `/commit?container=${made.body.Id}&changes=${encodeURIComponent(changes)}`);
    await docker('DELETE', `/containers/${made.body.Id}?force=1`);
    hostileImage = commit.body.Id;
    images.push(hostileImage);
  });

  for (const attach of ['engine', 'agent'] as const) {
    describe(`with network_attach = ${attach}`, () => {
      let t: TestAgent;
      before(async () => {
        t = await startTestAgent({ docker: { network_attach: attach } });
      });
      after(async () => {
        await t?.close(PROJECT, attach === 'agent' ? images : []);
      });

      it('creates, lists and reboots the instance with only the labels Berth set', async () => {
        const glanceId = randomUUID();
        t.store.add(glanceId, { docker_image_id: hostileImage }, () => saveImage(hostileImage));
        const uuid = randomUUID();
        const created = await t.client.createInstance(uuid, spec(glanceId));
        assert.equal(created.project_id, PROJECT);
        assert.notEqual(created.ip_address, hostile[LABEL_IPV4]);

        const { body } = await docker<{ Config: { Labels: Record<string, string> } }>('GET', `/containers/berth-${uuid}/json`);
        const labels = body.Config.Labels;
        assert.equal(labels[LABEL_INSTANCE], uuid);
        assert.equal(labels[LABEL_PROJECT], PROJECT);
        assert.equal(labels[LABEL_IMAGE], glanceId);
        // The agent's own [DEFAULT] host, or '' where it sets none.
        assert.notEqual(labels[LABEL_HOST], hostile[LABEL_HOST]);
        for (const key of ['org.openstack.berth.future', ...(attach === 'engine' ? [LABEL_NETWORK, LABEL_IPV4, LABEL_MAC] : [])]) {
          assert.equal(labels[key], '', `${key} came from the image`);
        }
        if (attach === 'agent') assert.notEqual(labels[LABEL_NETWORK], hostile[LABEL_NETWORK]);

        const listed = (await t.client.listInstances()).filter((i) => i.uuid === uuid || i.uuid === hostile[LABEL_INSTANCE]);
        assert.deepEqual(
          listed.map((i) => [i.uuid, i.project_id]),
          [[uuid, PROJECT]],
        );
        assert.notEqual(listed[0]!.ip_address, hostile[LABEL_IPV4]);

        // A restart plugs the container again: into its own network or none, never the one the image names.
        const rebooted = await t.client.instanceAction(uuid, { action: 'reboot', hard: true });
        assert.equal(rebooted.power_state, 'running');
        assert.notEqual(rebooted.ip_address, hostile[LABEL_IPV4]);

        // A snapshot's commit keeps no Berth label of the instance it came from.
        const committed = await new DockerRuntime({ hostUrl: DOCKER_URL, apiVersion: API_VERSION }).commit(uuid);
        images.push(committed);
        const image = await docker<{ Config: { Labels: Record<string, string> | null } }>('GET', `/images/${committed}/json`);
        const kept = Object.entries(image.body.Config.Labels ?? {}).filter(([k, v]) => k.startsWith('org.openstack.berth.') && v !== '');
        assert.deepEqual(kept, []);
      });
    });
  }
});
