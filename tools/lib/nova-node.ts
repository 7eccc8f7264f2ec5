import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAgentClient } from '../../agent/client/http.js';
import { createVolumeClient } from '../../agent/client/volumes-http.js';
import { startAgent, type RunningAgent } from '../../agent/main.js';
import { silentLogger, type Logger } from '../../common/log.js';
import { loadConfig, type Config } from '../../conf/index.js';
import { createDriver, type Driver } from '../../driver/service.js';
import { createImageClient } from '../../glance-bridge/client/http.js';
import { startImageService, type ImageServiceHandle } from '../../glance-bridge/main.js';
import { mergeSections } from './stack.js';

/** What a Berth node needs to know of the OpenStack cloud it joins. */
export interface CloudAccess {
  transportUrl: string;
  keystoneUrl: string;
  glanceUrl: string;
  serviceProject: string;
  placement: { username: string; password: string };
  glance: { username: string; password: string };
}

export interface NovaNode {
  host: string;
  config: Config;
  driver: Driver | null;
  agent: RunningAgent;
  /** The Glance id (in the cloud's Glance) of the test image (`image`), imported through the bridge. */
  imageId: string;
  /** With `altImage`: a second Glance image of the same content under its own id and name. */
  imageAltId: string | null;
  /** Stops the compute service only (graceful); the agent and the instances stay. */
  stopCompute(): Promise<void>;
  startCompute(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A whole Berth node in nova mode, in this process, for tests and benchmarks: glance-bridge
 * (imports the registry image and exports it to the cloud's Glance), agent, compute driver.
 */
export async function startNovaNode(
  cloud: CloudAccess,
  o: {
    host: string;
    registry: string;
    log?: Logger;
    overrides?: Record<string, Record<string, unknown>>;
    /** Repository in the registry; default berth/busybox:latest. */ image?: string;
    /** Export the image a second time as another Glance image (Tempest's `image_ref_alt`). */
    altImage?: boolean;
  },
): Promise<NovaNode> {
  const state = mkdtempSync(join(tmpdir(), 'berth-nova-node-'));
  const service = (u: { username: string; password: string }) => ({
    auth_url: cloud.keystoneUrl,
    username: u.username,
    password: u.password,
    project_name: cloud.serviceProject,
    region_name: 'RegionOne',
  });
  const base = {
    DEFAULT: { state_path: state, host: o.host, transport_url: cloud.transportUrl, status_listen: '' },
    nova: { control_plane: 'nova', report_interval: 5, update_resources_interval: 10 },
    placement: service(cloud.placement),
    glance: { api_url: cloud.glanceUrl, ...service(cloud.glance) },
    image_store: { listen: '127.0.0.1:0', registry_listen: '' },
    registry: { insecure_hosts: [o.registry], allowed_internal: [o.registry] },
    agent: { listen: '127.0.0.1:0', token: '' },
  };
  const overrides = mergeSections(base, o.overrides ?? {});
  const log = o.log ?? silentLogger();
  const cleanup: Array<() => Promise<unknown>> = [async () => rmSync(state, { recursive: true, force: true })];
  try {
    const config = loadConfig({ env: {}, overrides });
    const bridge: ImageServiceHandle = await startImageService(config, { log });
    cleanup.unshift(() => bridge.close());
    // As admin of this noauth bridge: only an admin exports an image as public.
    const client = createImageClient({ url: bridge.url, roles: ['admin'], requestTimeoutMs: 120_000, pollIntervalMs: 50 });
    const local = await client.importImage(`docker://${o.registry}/${o.image ?? 'berth/busybox:latest'}`);
    const imageId = (await client.exportImage(local.id, { visibility: 'public', name: `berth-busybox-${o.host}` })).id;
    const glance = createImageClient({ url: cloud.glanceUrl, keystone: config.glance });
    cleanup.unshift(() => glance.deleteImage(imageId).catch(() => undefined));
    const imageAltId = o.altImage ? (await client.exportImage(local.id, { visibility: 'public', name: `berth-busybox-alt-${o.host}` })).id : null;
    if (imageAltId) cleanup.unshift(() => glance.deleteImage(imageAltId).catch(() => undefined));
    const agent = await startAgent(config, { log });
    cleanup.unshift(() => agent.close());
    const driverConfig = loadConfig({ env: {}, overrides: mergeSections(overrides, { agent: { url: agent.url, token: agent.token } }) });
    const node: NovaNode = {
      host: o.host,
      config: driverConfig,
      driver: null,
      agent,
      imageId,
      imageAltId,
      async startCompute() {
        node.driver ??= await createDriver({
          config: driverConfig,
          agent: createAgentClient({ url: agent.url, token: agent.token, retries: 2 }),
          volumes: createVolumeClient({ url: agent.url, token: agent.token }),
          log,
        });
      },
      async stopCompute() {
        const d = node.driver;
        node.driver = null;
        await d?.stop(5000);
      },
      async stop() {
        await node.stopCompute();
        for (const step of cleanup) await step().catch(() => undefined);
      },
    };
    await node.startCompute();
    return node;
  } catch (err) {
    for (const step of cleanup) await step().catch(() => undefined);
    throw err;
  }
}
