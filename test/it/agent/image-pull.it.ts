import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { HostImage } from '../../../agent/client/types.js';
import { startAgent, type RunningAgent } from '../../../agent/main.js';
import { parseEndpoint, readBody, requestJson, requestRaw } from '../../../common/http-client.js';
import { silentLogger } from '../../../common/log.js';
import { loadConfig } from '../../../conf/load.js';
import { createImageClient } from '../../../glance-bridge/client/http.js';
import { startImageService } from '../../../glance-bridge/main.js';
import { DOCKER_URL, TEST_IMAGE, docker } from './docker-helpers.js';

const run = promisify(execFile);
const DOCKER_CLI = '/usr/bin/docker';
const REGISTRY = TEST_IMAGE.slice(0, TEST_IMAGE.indexOf('/'));

/**
 * `[agent] image_registry`: the agent has dockerd pull an imported image from the image service's
 * registry endpoint. The image is the busybox test image plus one small layer, so dockerd, which
 * holds busybox already, must fetch only the config and the new layer.
 */
describe('berth-agent pulls imported images through the image service registry endpoint', function () {
  this.timeout(180_000);
  const repo = `berth/pull-it-${randomUUID().slice(0, 8)}`;
  const tag = `${REGISTRY}/${repo}:latest`;
  const state = mkdtempSync(join(tmpdir(), 'berth-pull-it-'));
  let images: Awaited<ReturnType<typeof startImageService>>;
  let agent: RunningAgent;
  let imageId = '';

  before(async () => {
    const context = join(state, 'context');
    await run('mkdir', ['-p', context]);
    writeFileSync(join(context, 'marker'), randomBytes(64 * 1024));
    writeFileSync(join(context, 'Dockerfile'), `FROM ${TEST_IMAGE}\nCOPY marker /marker\n`);
    await run(DOCKER_CLI, ['build', '-q', '-t', tag, context], { timeout: 120_000 });
    await run(DOCKER_CLI, ['push', tag], { timeout: 120_000 });
    await run(DOCKER_CLI, ['rmi', tag], { timeout: 60_000 });
    const base = { DEFAULT: { state_path: state, host: `pull-it-${randomUUID().slice(0, 8)}` } };
    images = await startImageService(
      loadConfig({ env: {}, overrides: { ...base, image_store: { listen: '127.0.0.1:0' }, registry: { allowed_internal: [REGISTRY] } } }),
      { log: silentLogger() },
    );
    const endpoint = images.registryEndpoint!.address;
    agent = await startAgent(
      loadConfig({
        env: {},
        overrides: {
          ...base,
          glance: { api_url: images.url },
          agent: { listen: '127.0.0.1:0', token: '', image_registry: endpoint },
          docker: { host_url: DOCKER_URL },
        },
      }),
      { log: silentLogger() },
    );
  });

  after(async () => {
    if (imageId) await docker('DELETE', `/images/${imageId}?force=1`, undefined, [404, 409]);
    await run(DOCKER_CLI, ['rmi', '-f', tag], { timeout: 60_000 }).catch(() => undefined);
    await agent?.close();
    await images?.close();
    rmSync(state, { recursive: true, force: true });
  });

  it('fetches only the missing layer, and the image is the one the store recorded', async () => {
    const imported = await createImageClient({ url: images.url, roles: ['admin'] }).importImage(`docker://${tag}`);
    imageId = String(imported.docker_image_id);
    assert.equal((await docker('GET', `/images/${imageId}/json`, undefined, [404])).status, 404, 'the image is not on the host before the fetch');
    const before = { ...images.registryEndpoint!.stats };
    const res = await requestJson<{ image: HostImage }>(parseEndpoint(agent.url), {
      method: 'PUT',
      path: `/v1/images/${imported.id}`,
      headers: { authorization: `Bearer ${agent.token}` },
    });
    assert.equal(res.body.image.present, true);
    assert.equal(res.body.image.docker_image_id, imageId);
    assert.equal((await docker('GET', `/images/${imageId}/json`)).status, 200);
    const stats = images.registryEndpoint!.stats;
    assert.equal(stats.manifestsServed - before.manifestsServed, 1);
    assert.equal(stats.blobsServed - before.blobsServed, 2, "the config and the new layer; busybox's layer was on the host already");
    const metrics = (
      await readBody((await requestRaw(parseEndpoint(agent.url), { path: '/metrics', headers: { authorization: `Bearer ${agent.token}` } })).body)
    ).toString('utf8');
    assert.match(metrics, /berth_agent_image_fetches_total\{result="pulled"\} 1/);
  });
});
