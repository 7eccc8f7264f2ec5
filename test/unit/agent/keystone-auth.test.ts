import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp } from '../../../agent/app.js';
import type { AgentAuthStrategy } from '../../../agent/auth.js';
import { createAgentClient } from '../../../agent/client/http.js';
import { agentClientAuth } from '../../../agent/client/token.js';
import { incomingKeystoneAuth } from '../../../agent/main.js';
import { silentLogger } from '../../../common/log.js';
import { loadConfig } from '../../../conf/load.js';
import { FakeContainerRuntime } from '../../fakes/container-runtime.js';
import { FakeImageService } from '../../fakes/glance-images.js';
import { fakeKeystone } from '../../fakes/keystone.js';
import { inject, inProcessAgent, routeGlobalAgentInProcess, serveInProcess } from '../../support/in-process.js';

const TOKEN = 'bearer-token-0123456789';

describe('agent: [agent] auth_strategy', () => {
  let ks: Awaited<ReturnType<typeof fakeKeystone>>;
  let statePath: string;
  const servers: Array<{ close(): Promise<void> }> = [];

  const keystoneConfig = (strategy: AgentAuthStrategy, token = '') =>
    loadConfig({
      env: {},
      overrides: {
        DEFAULT: { state_path: statePath },
        agent: { auth_strategy: strategy, token },
        keystone_authtoken: { auth_url: ks.url, username: 'berth', password: 'svc', project_name: 'service' },
      },
    });

  /** An agent over fakes with the strategy's auth, and a helper for raw requests. */
  async function agentWith(strategy: AgentAuthStrategy) {
    const keystone = incomingKeystoneAuth(keystoneConfig(strategy), inProcessAgent);
    const app = createApp({
      runtime: new FakeContainerRuntime(),
      images: new FakeImageService(),
      token: strategy === 'keystone' ? '' : TOKEN,
      authStrategy: strategy,
      ...(keystone ? { keystone } : {}),
      log: silentLogger(),
      maxBodyBytes: 4096,
      stopTimeout: 1,
      statePath,
      injectSshKeys: false,
      subnetPool: '10.98.0.0/22',
      subnetPrefix: 24,
    });
    // Raw requests reach the listener directly; the agent client through the in-process pool.
    const listener = app.callback();
    const server = serveInProcess(listener);
    servers.push(server);
    const get = async (path: string, headers: Record<string, string>) => {
      const res = await inject(listener, { path, headers });
      const text = res.text();
      const body = (res.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(text) : {}) as { error?: { code: string; message: string } };
      return { status: res.status, challenge: res.headers.get('www-authenticate'), body };
    };
    return { url: server.base, get };
  }

  let restore: () => void;
  beforeEach(async () => {
    statePath = mkdtempSync(join(tmpdir(), 'berth-agent-auth-'));
    // pkgcloud's sessions go through Node's global agent, routed in-process here.
    restore = routeGlobalAgentInProcess();
    ks = await fakeKeystone({
      inProcess: true,
      users: [
        { name: 'berth', password: 'svc', project: 'service', roles: ['service'] },
        { name: 'nova', password: 'n', project: 'service', roles: ['admin'] },
        { name: 'alice', password: 'a', project: 'demo', roles: ['member', 'reader'] },
      ],
    });
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
    await ks.close();
    restore();
    rmSync(statePath, { recursive: true, force: true });
  });

  it('token: the bearer token passes; an X-Auth-Token alone is refused with UNAUTHORIZED', async () => {
    const agent = await agentWith('token');
    assert.equal((await agent.get('/v1/instances', { authorization: `Bearer ${TOKEN}` })).status, 200);
    const refused = await agent.get('/v1/instances', { 'x-auth-token': ks.issue('nova') });
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error?.code, 'UNAUTHORIZED');
    assert.equal(refused.challenge, null);
  });

  it('keystone: a token with admin or service passes, cached after the first validation', async () => {
    const agent = await agentWith('keystone');
    const token = ks.issue('nova');
    assert.equal((await agent.get('/v1/instances', { 'x-auth-token': token })).status, 200);
    assert.equal((await agent.get('/metrics', { 'x-auth-token': token })).status, 200);
    assert.equal(ks.counts.validated, 1);
    assert.equal((await agent.get('/v1/instances', { 'x-auth-token': ks.issue('berth') })).status, 200);
  });

  it('keystone: a tenant token is refused with FORBIDDEN naming the roles', async () => {
    const agent = await agentWith('keystone');
    const res = await agent.get('/v1/instances', { 'x-auth-token': ks.issue('alice') });
    assert.equal(res.status, 403);
    assert.equal(res.body.error?.code, 'FORBIDDEN');
    assert.match(res.body.error?.message ?? '', /admin, service/);
  });

  it('keystone: missing, unknown and bearer-only credentials are 401 with the Keystone challenge', async () => {
    const agent = await agentWith('keystone');
    const attempts: Array<Record<string, string>> = [{}, { 'x-auth-token': 'tok-made-up' }, { authorization: `Bearer ${TOKEN}` }];
    for (const headers of attempts) {
      const res = await agent.get('/v1/instances', headers);
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.equal(res.body.error?.code, 'UNAUTHORIZED');
      assert.equal(res.challenge, `Keystone uri="${ks.url}"`);
    }
  });

  it('token+keystone: either credential passes, neither is refused', async () => {
    const agent = await agentWith('token+keystone');
    assert.equal((await agent.get('/v1/instances', { authorization: `Bearer ${TOKEN}` })).status, 200);
    assert.equal((await agent.get('/v1/instances', { 'x-auth-token': ks.issue('nova') })).status, 200);
    assert.equal((await agent.get('/v1/instances', { authorization: 'Bearer wrong-token-000000000000' })).status, 401);
  });

  it('healthz stays open in every mode', async () => {
    const agent = await agentWith('keystone');
    assert.equal((await agent.get('/healthz', {})).status, 200);
  });

  it('the agent client presents a [keystone_authtoken] session token and renews it after a revocation', async () => {
    const first = await agentWith('keystone');
    const auth = agentClientAuth(keystoneConfig('keystone'));
    assert.deepEqual(await createAgentClient({ url: first.url, ...auth, retries: 0, agent: inProcessAgent }).listInstances(), []);
    ks.revokeAll();
    // A fresh agent: validations are cached per token, so the first agent would still accept the revoked one.
    const second = await agentWith('keystone');
    assert.deepEqual(await createAgentClient({ url: second.url, ...auth, retries: 0, agent: inProcessAgent }).listInstances(), []);
    assert.equal(ks.counts.issued, 4, 'two agent sessions, the client session, and its renewal after the revocation');
  });

  it('token+keystone: the client prefers the bearer token when this host has it', async () => {
    const agent = await agentWith('token+keystone');
    const auth = agentClientAuth(keystoneConfig('token+keystone', TOKEN));
    assert.equal(auth.session, undefined);
    assert.deepEqual(await createAgentClient({ url: agent.url, ...auth, retries: 0, agent: inProcessAgent }).listInstances(), []);
    const fromKeystone = agentClientAuth(keystoneConfig('token+keystone'));
    assert.ok(fromKeystone.session, 'no token file yet: a keystone session');
  });

  it('a keystone strategy without the [keystone_authtoken] service user is refused with the config (berth conf check too)', () => {
    assert.throws(
      () => loadConfig({ env: {}, overrides: { DEFAULT: { state_path: statePath }, agent: { auth_strategy: 'token+keystone' } } }),
      /\[agent\] auth_strategy = token\+keystone needs \[keystone_authtoken\] auth_url, username, password/,
    );
    assert.equal(incomingKeystoneAuth(loadConfig({ env: {}, overrides: { DEFAULT: { state_path: statePath } } })), undefined);
  });
});
