import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAgentClient } from '../../../agent/client/http.js';
import { agentClientAuth } from '../../../agent/client/token.js';
import { startAgent, type RunningAgent } from '../../../agent/main.js';
import { silentLogger } from '../../../common/log.js';
import { keystoneSession, type KeystoneCredentials } from '../../../common/keystone/index.js';
import { loadConfig } from '../../../conf/load.js';
import type { Config } from '../../../conf/options.js';
import { loadTestCloud, openstack } from '../../../tools/lib/cloud.js';
import { FakeImageService } from '../../fakes/glance-images.js';

/**
 * `[agent] auth_strategy = keystone` against the test cloud's Keystone: the nova service user
 * (admin on the service project) is let in, a member-only user is not.
 */
describe('berth-agent: Keystone tokens from the test cloud', function () {
  this.timeout(120_000);
  const cloud = loadTestCloud();
  const memberName = `berth-it-member-${randomBytes(4).toString('hex')}`;
  const memberPassword = randomBytes(12).toString('hex');
  let stateDir: string;
  let config: Config;
  let agent: RunningAgent;
  let memberCreated = false;

  const creds = (username: string, password: string): KeystoneCredentials => ({
    auth_url: cloud.keystoneUrl,
    username,
    password,
    project_name: cloud.serviceProject,
    user_domain_name: 'Default',
    project_domain_name: 'Default',
    region_name: '',
  });
  const listWith = (headers: Record<string, string>) => fetch(`${agent.url}/v1/instances`, { headers });

  before(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'berth-it-agent-ks-'));
    config = loadConfig({
      env: {},
      overrides: {
        DEFAULT: { state_path: stateDir },
        agent: { listen: '127.0.0.1:0', auth_strategy: 'keystone' },
        keystone_authtoken: { ...creds(cloud.nova.username, cloud.nova.password) },
      },
    });
    agent = await startAgent(config, { images: new FakeImageService(), log: silentLogger() });
    await openstack(['user', 'create', '--domain', 'Default', '--password', memberPassword, memberName]);
    memberCreated = true;
    await openstack(['role', 'add', '--project', cloud.serviceProject, '--user', memberName, 'member']);
  });

  after(async () => {
    if (memberCreated) await openstack(['user', 'delete', memberName]).catch(() => undefined);
    await agent?.close();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('accepts a token of the nova service user, which has admin on the service project', async () => {
    const token = await keystoneSession(creds(cloud.nova.username, cloud.nova.password)).token();
    const res = await listWith({ 'x-auth-token': token });
    assert.equal(res.status, 200, await res.clone().text());
    assert.ok(Array.isArray(((await res.json()) as { instances: unknown[] }).instances));
  });

  it('refuses a token of a member-only user with 403 FORBIDDEN', async () => {
    const token = await keystoneSession(creds(memberName, memberPassword)).token();
    const res = await listWith({ 'x-auth-token': token });
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'FORBIDDEN');
  });

  it('refuses a made-up token and the absent bearer token with 401 UNAUTHORIZED', async () => {
    const attempts: Array<Record<string, string>> = [{ 'x-auth-token': 'gAAAAAnot-a-real-token' }, { authorization: 'Bearer anything' }];
    for (const headers of attempts) {
      const res = await listWith(headers);
      assert.equal(res.status, 401);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
    }
  });

  it("the driver's agent client authenticates with the [keystone_authtoken] session", async () => {
    const client = createAgentClient({ url: agent.url, ...agentClientAuth(config), retries: 0 });
    assert.ok(Array.isArray(await client.listInstances()));
  });
});
