import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../../../agent/app.js';
import { createAgentClient } from '../../../agent/client/http.js';
import type { AgentClient, InstanceSpec } from '../../../agent/client/types.js';
import { silentLogger } from '../../../common/log.js';
import { FakeContainerRuntime } from '../../fakes/container-runtime.js';
import { buildDockerArchive } from '../../fakes/docker-archive.js';
import { FakeImageService } from '../../fakes/glance-images.js';
import { FakeVolumeDevices } from '../../fakes/volume-devices.js';
import { inject, inProcessAgent, serveInProcess } from '../../support/in-process.js';

export const TOKEN = 'test-token-0123456789';

export interface AgentHarness {
  url: string;
  runtime: FakeContainerRuntime;
  store: FakeImageService;
  client: AgentClient;
  imageId: string;
  /** state_path of this agent: config drives are under instances/<uuid>/. */
  statePath: string;
  spec(overrides?: Partial<InstanceSpec>): InstanceSpec;
  raw(
    method: string,
    path: string,
    opts?: { body?: string | Buffer; headers?: Record<string, string>; token?: string | null },
  ): Promise<{ status: number; body: unknown }>;
  close(): Promise<void>;
}

/**
 * The agent app over fakes, served in-process: `raw` requests reach its listener directly, and
 * `client` (the agent's HTTP client, under test in most agent files) connects to it through the
 * in-process agent. Nothing listens.
 */
export async function startHarness(opts: { injectSshKeys?: boolean; volumes?: { maxSizeGb: number; maxTotalGb: number } } = {}): Promise<AgentHarness> {
  const runtime = new FakeContainerRuntime();
  const store = new FakeImageService();
  const archive = await buildDockerArchive('berth/guest:1');
  const imageId = randomUUID();
  store.add(imageId, { docker_image_id: archive.imageId }, archive.tar);
  const statePath = mkdtempSync(join(tmpdir(), 'berth-agent-unit-'));
  const app = createApp({
    runtime,
    images: store,
    token: TOKEN,
    log: silentLogger(),
    maxBodyBytes: 4096,
    stopTimeout: 1,
    statePath,
    injectSshKeys: opts.injectSshKeys ?? false,
    // Local volumes over folders (test/fakes/volume-devices.ts), only when a test asks.
    ...(opts.volumes ? { volumes: { devices: new FakeVolumeDevices(join(statePath, 'devices')), path: join(statePath, 'volumes'), ...opts.volumes } } : {}),
    subnetPool: '10.99.0.0/22',
    subnetPrefix: 24,
    // Console endpoints that open no socket.
    serialConsole: {
      enabled: true,
      portRange: '10000:10100',
      host: '127.0.0.1',
      tokenTtlSeconds: 600,
      listen: async () => ({ close: async () => undefined }),
    },
  });
  const listener = app.callback();
  const served = serveInProcess(listener);
  const url = served.base;
  return {
    url,
    runtime,
    store,
    imageId,
    statePath,
    client: createAgentClient({ url, token: TOKEN, retries: 0, agent: inProcessAgent }),
    spec: (overrides = {}) => ({
      image_id: imageId,
      flavor: { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} },
      name: 'vm-1',
      hostname: 'vm-1',
      project_id: 'demo',
      user_id: 'alice',
      metadata: { role: 'test' },
      user_data: null,
      key_data: null,
      fixed_ip: null,
      ...overrides,
    }),
    raw: (method, path, opts = {}) => rawRequest(listener, method, path, opts),
    close: async () => {
      await served.close();
      rmSync(statePath, { recursive: true, force: true });
    },
  };
}

async function rawRequest(
  listener: http.RequestListener,
  method: string,
  path: string,
  opts: { body?: string | Buffer; headers?: Record<string, string>; token?: string | null },
): Promise<{ status: number; body: unknown }> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== null) headers.authorization = `Bearer ${opts.token ?? TOKEN}`;
  if (opts.body !== undefined) headers['content-type'] ??= 'application/json';
  const res = await inject(listener, { method, path, headers, ...(opts.body !== undefined ? { body: opts.body } : {}) });
  const text = res.text();
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON: compared as text */
  }
  return { status: res.status, body };
}

export const errorCode = (body: unknown): string | undefined => (body as { error?: { code?: string } } | undefined)?.error?.code;
