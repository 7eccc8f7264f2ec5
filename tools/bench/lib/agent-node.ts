import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAgentClient } from '../../../agent/client/http.js';
import type { AgentClient, InstanceSpec } from '../../../agent/client/types.js';
import { startAgent } from '../../../agent/main.js';
import { parseEndpoint, requestJson } from '../../../common/http-client.js';
import { silentLogger } from '../../../common/log.js';
import { loadConfig } from '../../../conf/load.js';
import { createImageClient } from '../../../glance-bridge/client/http.js';
import type { GlanceImage } from '../../../glance-bridge/client/types.js';
import { startImageService } from '../../../glance-bridge/main.js';
import { REGISTRY } from '../../lib/stack.js';

/**
 * The image service and the agent in this process, on the real dockerd, without the driver: what
 * the agent benchmarks measure. Isolated by host name and state directory.
 */
export interface AgentNode {
  host: string;
  client: AgentClient;
  url: string;
  token: string;
  statePath: string;
  importImage(ref: string): Promise<GlanceImage>;
  stop(): Promise<void>;
}

export async function startAgentNode(agentOptions: Record<string, unknown> = {}): Promise<AgentNode> {
  const host = `bench-agent-${randomUUID().slice(0, 8)}`;
  const statePath = mkdtempSync(join(tmpdir(), 'berth-bench-agent-'));
  const base = { DEFAULT: { state_path: statePath, host } };
  const images = await startImageService(
    loadConfig({ env: {}, overrides: { ...base, image_store: { listen: '127.0.0.1:0' }, registry: { allowed_internal: [REGISTRY] } } }),
    { log: silentLogger() },
  );
  const registry = images.registryEndpoint ? { image_registry: images.registryEndpoint.address } : {};
  const agent = await startAgent(
    loadConfig({
      env: {},
      overrides: { ...base, glance: { api_url: images.url }, agent: { listen: '127.0.0.1:0', ...registry, ...agentOptions } },
    }),
    { log: silentLogger() },
  );
  const client = createAgentClient({ url: agent.url, token: agent.token, retries: 2 });
  return {
    host,
    client,
    url: agent.url,
    token: agent.token,
    statePath,
    importImage: (ref) => createImageClient({ url: images.url, roles: ['admin'] }).importImage(ref.includes('://') ? ref : `docker://${REGISTRY}/${ref}`),
    async stop() {
      await requestJson(parseEndpoint(agent.url), { method: 'POST', path: '/v1/networks/prune', headers: { authorization: `Bearer ${agent.token}` } }).catch(
        () => undefined,
      );
      await agent.close();
      await images.close();
      rmSync(statePath, { recursive: true, force: true });
    },
  };
}

/** An instance spec for the benchmarks: 1 vCPU, `memoryMb` of memory, no user data. */
export function benchInstance(imageId: string, projectId: string, memoryMb = 64): InstanceSpec {
  return {
    image_id: imageId,
    flavor: { vcpus: 1, memory_mb: memoryMb, root_gb: 1, swap: 0, extra_specs: {} },
    name: 'bench',
    hostname: 'bench',
    project_id: projectId,
    user_id: 'bench',
    metadata: {},
    user_data: null,
    key_data: null,
    fixed_ip: null,
  };
}
