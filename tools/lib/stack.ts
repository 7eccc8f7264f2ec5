import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAgentClient } from '../../agent/client/http.js';
import { createVolumeClient } from '../../agent/client/volumes-http.js';
import { startAgent } from '../../agent/main.js';
import { parseEndpoint, requestJson } from '../../common/http-client.js';
import { silentLogger } from '../../common/log.js';
import { loadConfig } from '../../conf/load.js';
import { createDriver, type Driver } from '../../driver/service.js';
import { createImageClient } from '../../glance-bridge/client/http.js';
import type { GlanceImage } from '../../glance-bridge/client/types.js';
import { startImageService } from '../../glance-bridge/main.js';

export const DOCKER = parseEndpoint(process.env.BERTH_TEST_DOCKER ?? 'unix:///var/run/docker.sock');
export const REGISTRY = process.env.BERTH_TEST_REGISTRY ?? '127.0.0.1:5000';
export const INSTANCE_LABEL = 'org.openstack.berth.instance';

export interface DockerContainer {
  Id: string;
  State: string;
  Labels: Record<string, string>;
}

export async function containersOf(uuid: string): Promise<DockerContainer[]> {
  const filters = encodeURIComponent(JSON.stringify({ label: [`${INSTANCE_LABEL}=${uuid}`] }));
  return (await requestJson<DockerContainer[]>(DOCKER, { path: `/v1.41/containers/json?all=1&filters=${filters}` }, 'dockerd')).body;
}

export async function removeContainersOf(uuid: string): Promise<void> {
  for (const c of await containersOf(uuid).catch(() => [])) {
    await requestJson(DOCKER, { method: 'DELETE', path: `/v1.41/containers/${c.Id}?force=1`, accept: [404] }).catch(() => undefined);
  }
}

/**
 * The whole node on real services, in this process (for tests and benchmarks): image service, agent (real dockerd) and
 * compute driver (real RabbitMQ), isolated by host name, control exchange and state directory.
 */
export interface Stack {
  host: string;
  exchange: string;
  driver: Driver;
  imagesUrl: string;
  agentUrl: string;
  agentToken: string;
  /** The busybox test image, imported from the local registry. */
  testImage(): Promise<GlanceImage>;
  /** Instances whose containers are removed at stop, whatever happened. */
  track(uuid: string): void;
  stop(): Promise<void>;
}

/** Per-section option values; `overrides` are laid over every service's config (e.g. `[DEFAULT] max_concurrent_builds`). */
export type StackOverrides = Partial<Record<string, Record<string, unknown>>>;

/** `base` with each section of `extra` merged in, so the stack's own isolation keys survive unrelated overrides. */
export function mergeSections(base: StackOverrides, extra: StackOverrides): StackOverrides {
  const out: StackOverrides = { ...base };
  for (const [section, values] of Object.entries(extra)) out[section] = { ...out[section], ...values };
  return out;
}

export async function startStack(opts: { exchange?: string; overrides?: StackOverrides } = {}): Promise<Stack> {
  const id = randomUUID().slice(0, 8);
  const host = `stack-${id}`;
  const exchange = opts.exchange ?? `berth-stack-${id}`;
  const state = mkdtempSync(join(tmpdir(), 'berth-stack-'));
  const base = mergeSections(opts.overrides ?? {}, { DEFAULT: { state_path: state, host, control_exchange: exchange } });
  const images = await startImageService(
    loadConfig({ env: {}, overrides: mergeSections(base, { image_store: { listen: '127.0.0.1:0' }, registry: { allowed_internal: [REGISTRY] } }) }),
    { log: silentLogger() },
  );
  // The agent pulls imported images through the image service's registry endpoint, as a deployment with [agent] image_registry does.
  const registry = images.registryEndpoint ? { image_registry: images.registryEndpoint.address } : {};
  const agent = await startAgent(
    loadConfig({ env: {}, overrides: mergeSections(base, { glance: { api_url: images.url }, agent: { listen: '127.0.0.1:0', ...registry } }) }),
    { log: silentLogger() },
  );
  const config = loadConfig({ env: {}, overrides: mergeSections(base, { glance: { api_url: images.url }, agent: { url: agent.url } }) });
  const driver = await createDriver({
    config,
    agent: createAgentClient({ url: agent.url, token: agent.token, retries: 2 }),
    volumes: createVolumeClient({ url: agent.url, token: agent.token }),
    log: silentLogger(),
  });
  const tracked: string[] = [];
  let image: GlanceImage | null = null;
  return {
    host,
    exchange,
    driver,
    imagesUrl: images.url,
    agentUrl: agent.url,
    agentToken: agent.token,
    async testImage() {
      // As the operator seeding the catalog: an admin's import is public, so any project boots it.
      image ??= await createImageClient({ url: images.url, roles: ['admin'] }).importImage(`docker://${REGISTRY}/berth/busybox:latest`);
      return image;
    },
    track: (uuid) => {
      tracked.push(uuid);
    },
    async stop() {
      await driver.stop(5000);
      for (const uuid of tracked) await removeContainersOf(uuid);
      // Project networks the agent made for these instances, now empty.
      await requestJson(parseEndpoint(agent.url), { method: 'POST', path: '/v1/networks/prune', headers: { authorization: `Bearer ${agent.token}` } }).catch(
        () => undefined,
      );
      await agent.close();
      await images.close();
      rmSync(state, { recursive: true, force: true });
    },
  };
}
