import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import sinon from 'sinon';
import { macFor } from '../../../agent/network/ipv4.js';
import { projectNetworkName } from '../../../agent/network/project-networks.js';
import { startHarness, type AgentHarness } from './harness.js';

/** The create path asks the engine and the store only what it cannot know already. */
describe('agent create: what is remembered between creates', () => {
  let h: AgentHarness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    sinon.restore();
    await h.close();
  });

  const create = (project = 'demo') => h.client.createInstance(randomUUID(), h.spec({ project_id: project }));

  it('asks neither the store nor the engine about a verified image or a known network again', async () => {
    await create();
    const getImage = sinon.spy(h.store, 'getImage');
    const hasImage = sinon.spy(h.runtime, 'hasImage');
    const listNetworks = sinon.spy(h.runtime, 'listNetworks');
    const addresses = sinon.spy(h.runtime, 'networkAddresses');
    const second = await create();
    assert.equal(second.ip_address, '10.99.0.3');
    assert.equal(getImage.callCount + hasImage.callCount + listNetworks.callCount + addresses.callCount, 0);
  });

  it('fetches the image again when the engine lost it', async () => {
    await create();
    const [imageId] = [...h.runtime.images];
    for (const c of h.runtime.containers.keys()) await h.runtime.remove(c);
    h.runtime.images.delete(imageId!);
    const again = await create();
    assert.equal(again.power_state, 'running');
    assert.equal(h.runtime.loads, 2);
  });

  it("hands a deleted instance's address out again", async () => {
    const uuid = randomUUID();
    const first = await h.client.createInstance(uuid, h.spec());
    await h.client.deleteInstance(uuid);
    assert.equal((await create()).ip_address, first.ip_address);
  });

  it('re-reads the network when another engine client took the next address, and retries once', async () => {
    await create();
    const net = projectNetworkName('demo');
    // Another compute host on the same engine starts an instance at the address this agent would pick.
    await h.runtime.createContainer({
      uuid: randomUUID(),
      imageId: [...h.runtime.images][0]!,
      glanceImageId: h.imageId,
      projectId: 'demo',
      hostname: 'other',
      flavor: h.spec().flavor,
      network: { name: net, ipv4: '10.99.0.3', macAddress: macFor('10.99.0.3') },
    });
    const next = await create();
    assert.equal(next.ip_address, '10.99.0.4');
    assert.equal(next.power_state, 'running');
  });

  it("makes the project network again when it was removed behind the agent's back", async () => {
    const uuid = randomUUID();
    await h.client.createInstance(uuid, h.spec({ project_id: 'gone' }));
    await h.client.deleteInstance(uuid);
    h.runtime.networks.delete(projectNetworkName('gone'));
    const again = await create('gone');
    assert.equal(again.power_state, 'running');
    assert.ok(h.runtime.networks.has(projectNetworkName('gone')));
  });

  it('still refuses a fixed address that is taken', async () => {
    await h.client.createInstance(randomUUID(), h.spec({ fixed_ip: '10.99.0.9' }));
    await assert.rejects(
      h.client.createInstance(randomUUID(), h.spec({ fixed_ip: '10.99.0.9' })),
      (e: Error & { code?: string }) => e.code === 'INVALID_INPUT',
    );
  });
});
