import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createApp } from '../../../agent/app.js';
import { createAgentClient } from '../../../agent/client/http.js';
import { FakeContainerRuntime } from '../../fakes/container-runtime.js';
import { buildDockerArchive } from '../../fakes/docker-archive.js';
import { FakeImageService } from '../../fakes/glance-images.js';
import { inProcessAgent, serveInProcess } from '../../support/in-process.js';

describe("agent: the build's request id from the driver", () => {
  it('arrives as X-Openstack-Request-Id and is logged with the request and the created instance', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, done) {
        lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
        done();
      },
    });
    const store = new FakeImageService();
    const archive = await buildDockerArchive('berth/guest:1');
    const imageId = randomUUID();
    store.add(imageId, { docker_image_id: archive.imageId }, archive.tar);
    const statePath = mkdtempSync(join(tmpdir(), 'berth-agent-reqid-'));
    const app = createApp({
      runtime: new FakeContainerRuntime(),
      images: store,
      token: 'tok',
      log: pino({ level: 'debug' }, sink),
      maxBodyBytes: 4096,
      stopTimeout: 1,
      statePath,
      injectSshKeys: false,
      subnetPool: '10.98.0.0/22',
      subnetPrefix: 24,
    });
    const server = serveInProcess(app.callback());
    try {
      const client = createAgentClient({ url: server.base, token: 'tok', retries: 0, agent: inProcessAgent });
      const requestId = `req-${randomUUID()}`;
      const uuid = randomUUID();
      await client.createInstance(uuid, {
        image_id: imageId,
        flavor: { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} },
        name: 'vm',
        hostname: 'vm',
        project_id: 'demo',
        user_id: 'alice',
        metadata: {},
        user_data: null,
        key_data: null,
        fixed_ip: null,
        request_id: requestId,
      });
      const request = lines.find((l) => l.msg === 'request' && l.method === 'PUT');
      assert.equal(request?.request_id, requestId, "the HTTP request is logged under the caller's id");
      assert.equal(lines.find((l) => l.msg === 'instance created')?.request_id, requestId);
    } finally {
      await server.close();
      rmSync(statePath, { recursive: true, force: true });
    }
  });
});
