import { randomUUID } from 'node:crypto';
import { agentClientConformance } from '../../conformance/agent-client.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';
import { startHarness } from './harness.js';

agentClientConformance('fake', async () => {
  const client = new FakeAgentClient();
  const imageId = randomUUID();
  client.knownImages.add(imageId);
  return {
    client,
    spec: (overrides = {}) => ({
      image_id: imageId,
      flavor: { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} },
      name: 'vm-1',
      hostname: 'vm-1',
      project_id: 'demo',
      user_id: 'alice',
      metadata: {},
      user_data: null,
      key_data: null,
      fixed_ip: null,
      ...overrides,
    }),
    missingImageId: randomUUID(),
    queuedImage: async () => randomUUID(),
    cleanup: async () => {
      client.instances.clear();
    },
  };
});

/** The real HTTP client on the agent's app over the fake container runtime and image store. */
agentClientConformance('HTTP client on the agent app', async () => {
  const h = await startHarness();
  return {
    client: h.client,
    spec: (overrides = {}) => h.spec(overrides),
    missingImageId: randomUUID(),
    queuedImage: async () => (await h.store.createImage({ name: 'snap', container_format: 'docker', disk_format: 'raw' })).id,
    cleanup: () => h.close(),
  };
});
