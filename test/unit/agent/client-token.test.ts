import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAgentClient } from '../../../agent/client/http.js';
import { loadOrCreateToken } from '../../../agent/main.js';
import { BerthError } from '../../../common/errors.js';
import { inProcessAgent, serveInProcess, type InProcessServer } from '../../support/in-process.js';

describe('agent client error rebuilding', () => {
  let server: InProcessServer;
  let url: string;
  let reply: { status: number; body: unknown };
  before(() => {
    server = serveInProcess((_req, res) => {
      res.writeHead(reply.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(reply.body));
    });
    url = server.base;
  });
  after(() => server.close());

  it("keeps the agent's codes and marks 503s retryable", async () => {
    reply = { status: 503, body: { error: { code: 'RUNTIME_UNAVAILABLE', message: 'down', details: {} } } };
    await assert.rejects(
      createAgentClient({ url, token: 't', retries: 0, agent: inProcessAgent }).listInstances(),
      (e: unknown) => e instanceof BerthError && e.code === 'RUNTIME_UNAVAILABLE' && e.retryable && e.status === 503,
    );
  });

  it('turns codes it does not know into AGENT_ERROR, keeping the original in details', async () => {
    reply = { status: 413, body: { error: { code: 'BODY_TOO_LARGE', message: 'too big', details: {} } } };
    await assert.rejects(
      createAgentClient({ url, token: 't', retries: 0, agent: inProcessAgent }).listInstances(),
      (e: unknown) => e instanceof BerthError && e.code === 'AGENT_ERROR' && e.details.agent_code === 'BODY_TOO_LARGE',
    );
  });

  it('getInstance answers null only for INSTANCE_NOT_FOUND', async () => {
    const client = createAgentClient({ url, token: 't', retries: 0, agent: inProcessAgent });
    reply = { status: 404, body: { error: { code: 'INSTANCE_NOT_FOUND', message: 'gone', details: {} } } };
    assert.equal(await client.getInstance('5b1c9a3e-0d7e-4c55-9c2f-1f5a8f1e2d3c'), null);
    reply = { status: 404, body: { error: { code: 'NOT_FOUND', message: 'no route', details: {} } } };
    await assert.rejects(client.getInstance('5b1c9a3e-0d7e-4c55-9c2f-1f5a8f1e2d3c'));
  });
});

describe('loadOrCreateToken', () => {
  it('writes a 0600 token once and reuses it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-token-'));
    try {
      const state = join(dir, 'state');
      const first = loadOrCreateToken(state);
      assert.match(first, /^[0-9a-f]{64}$/);
      assert.equal(statSync(join(state, 'agent.token')).mode & 0o777, 0o600);
      assert.equal(loadOrCreateToken(state), first);
      assert.equal(readFileSync(join(state, 'agent.token'), 'utf8').trim(), first);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
