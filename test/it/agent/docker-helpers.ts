import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { createAgentClient } from '../../../agent/client/http.js';
import type { AgentClient } from '../../../agent/client/types.js';
import { startAgent, type RunningAgent } from '../../../agent/main.js';
import { projectNetworkName } from '../../../agent/network/project-networks.js';
import { LABEL_PROJECT } from '../../../agent/runtime/types.js';
import { silentLogger } from '../../../common/log.js';
import { loadConfig } from '../../../conf/load.js';
import { FakeImageService } from '../../fakes/glance-images.js';
import { parseEndpoint, readBody, requestJson, requestRaw } from '../../../common/http-client.js';
import { readLogFrames } from '../../../agent/runtime/log-frames.js';

/** Direct Docker Engine API calls for integration tests: set-up, inspection and clean-up. */
export const DOCKER_URL = process.env.BERTH_TEST_DOCKER_URL ?? 'unix:///var/run/docker.sock';
export const API_VERSION = '1.41';
export const TEST_IMAGE = process.env.BERTH_TEST_IMAGE ?? '127.0.0.1:5000/berth/busybox:latest';
export const TEST_LABEL = 'org.openstack.berth.test';

const ep = parseEndpoint(DOCKER_URL);
const v = (path: string): string => `/v${API_VERSION}${path}`;

export async function docker<T>(method: string, path: string, body?: unknown, accept: number[] = []): Promise<{ status: number; body: T }> {
  return requestJson<T>(ep, { method, path: v(path), body, accept }, 'docker');
}

export async function imageIdOf(ref: string): Promise<string> {
  return (await docker<{ Id: string }>('GET', `/images/${encodeURIComponent(ref)}/json`)).body.Id;
}

/** `docker save` of one image, as a stream. */
export async function saveImage(ref: string): Promise<Readable> {
  const res = await requestRaw(ep, { path: v(`/images/${encodeURIComponent(ref)}/get`), timeoutMs: 120_000 }, 'docker');
  if (res.status !== 200) throw new Error(`docker save ${ref}: HTTP ${res.status} ${(await readBody(res.body)).toString()}`);
  return res.body;
}

/** Force-removes every container carrying `label` (KEY or KEY=VALUE). */
export async function removeLabelled(label: string): Promise<number> {
  const filters = encodeURIComponent(JSON.stringify({ label: [label] }));
  const { body } = await docker<Array<{ Id: string }>>('GET', `/containers/json?all=1&filters=${filters}`);
  await Promise.all(body.map((c) => docker('DELETE', `/containers/${c.Id}?force=1&v=1`, undefined, [404, 409])));
  return body.length;
}

/** Runs a command in a running container and returns its stdout+stderr. */
export async function execIn(container: string, cmd: string[]): Promise<string> {
  const { body } = await docker<{ Id: string }>('POST', `/containers/${container}/exec`, { Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const res = await requestRaw(ep, { method: 'POST', path: v(`/exec/${body.Id}/start`), body: { Detach: false, Tty: false } }, 'docker');
  return readLogFrames(res.body, 1024 * 1024);
}

/** Like execIn, with the command's exit code. */
export async function execWithStatus(container: string, cmd: string[]): Promise<{ output: string; exitCode: number | null }> {
  const { body } = await docker<{ Id: string }>('POST', `/containers/${container}/exec`, { Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const res = await requestRaw(ep, { method: 'POST', path: v(`/exec/${body.Id}/start`), body: { Detach: false, Tty: false } }, 'docker');
  const output = await readLogFrames(res.body, 1024 * 1024);
  const info = await docker<{ ExitCode: number | null }>('GET', `/exec/${body.Id}/json`);
  return { output, exitCode: info.body.ExitCode };
}

/** Removes the named networks; a network already gone is fine. */
export async function removeNetworks(names: string[]): Promise<void> {
  for (const name of names) await docker('DELETE', `/networks/${encodeURIComponent(name)}`, undefined, [404, 403, 409]);
}

/**
 * A real agent on the real dockerd for one test file: a fake image store holding the test image,
 * and a clean-up that removes the project's containers and network and the given images.
 */
export interface TestAgent {
  agent: RunningAgent;
  client: AgentClient;
  store: FakeImageService;
  baseGlanceId: string;
  stateDir: string;
  close(project: string, images: string[]): Promise<void>;
}

export async function startTestAgent(
  overrides: {
    DEFAULT?: Record<string, unknown>;
    agent?: Record<string, unknown>;
    docker?: Record<string, unknown>;
    serial_console?: Record<string, unknown>;
  } = {},
): Promise<TestAgent> {
  const stateDir = mkdtempSync(join(tmpdir(), 'berth-agent-it-'));
  const store = new FakeImageService();
  const baseGlanceId = randomUUID();
  store.add(baseGlanceId, { docker_image_id: await imageIdOf(TEST_IMAGE) }, () => saveImage(TEST_IMAGE));
  const config = loadConfig({
    env: {},
    overrides: {
      DEFAULT: { state_path: stateDir, ...overrides.DEFAULT },
      // The guest firewall is host-wide state: only the tests of it turn it on, with a chain of their own.
      agent: { listen: '127.0.0.1:0', token: '', guest_firewall: false, ...overrides.agent },
      docker: { host_url: DOCKER_URL, stop_timeout: 5, ...overrides.docker },
      ...(overrides.serial_console ? { serial_console: overrides.serial_console } : {}),
    },
  });
  const agent = await startAgent(config, { images: store, log: silentLogger() });
  const client = createAgentClient({ url: agent.url, token: agent.token, retries: 1 });
  return {
    agent,
    client,
    store,
    baseGlanceId,
    stateDir,
    async close(project, images) {
      await agent.close();
      await removeLabelled(`${LABEL_PROJECT}=${project}`);
      await removeNetworks([projectNetworkName(project)]);
      for (const id of images) await docker('DELETE', `/images/${id}?force=1`, undefined, [404, 409]);
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
