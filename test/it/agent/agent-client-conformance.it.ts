import { randomUUID } from 'node:crypto';
import { agentClientConformance } from '../../conformance/agent-client.js';
import { startTestAgent } from './docker-helpers.js';

const PROJECT = 'berth-it-agent-conformance';

/** The real HTTP client on the agent in-process on the real dockerd. */
agentClientConformance('HTTP client on the agent over dockerd', async () => {
  const t = await startTestAgent({ agent: {}, serial_console: { port_range: '44350:44360' } });
  const snapshots: string[] = [];
  return {
    client: t.client,
    spec: (overrides = {}) => ({
      image_id: t.baseGlanceId,
      flavor: { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} },
      name: 'conformance-vm',
      hostname: 'conformance-guest',
      user_id: 'tester',
      metadata: {},
      user_data: null,
      key_data: null,
      fixed_ip: null,
      ...overrides,
      project_id: PROJECT,
    }),
    missingImageId: randomUUID(),
    queuedImage: async () => (await t.store.createImage({ name: 'conformance-snap', container_format: 'docker', disk_format: 'raw' })).id,
    cleanup: async () => {
      for (const record of t.store.records.values())
        if (record.docker_image_id && record.id !== t.baseGlanceId) snapshots.push(record.docker_image_id as string);
      await t.close(PROJECT, snapshots);
    },
  };
});
