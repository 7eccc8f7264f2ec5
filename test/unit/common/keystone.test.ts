import assert from 'node:assert/strict';
import { BerthError } from '../../../common/errors.js';
import { keystoneSession, tokenValidator, type KeystoneCredentials } from '../../../common/keystone/index.js';
import { fakeKeystone } from '../../fakes/keystone.js';
import { inProcessAgent, routeGlobalAgentInProcess } from '../../support/in-process.js';

describe('common/keystone', () => {
  let ks: Awaited<ReturnType<typeof fakeKeystone>>;
  const creds = (over: Partial<KeystoneCredentials> = {}): KeystoneCredentials => ({
    auth_url: ks.url,
    username: 'nova',
    password: 'secret',
    project_name: 'service',
    user_domain_name: 'Default',
    project_domain_name: 'Default',
    region_name: 'RegionOne',
    ...over,
  });

  let restore: () => void;
  beforeEach(async () => {
    // pkgcloud sends through Node's global agent; the validator is given the in-process pool.
    restore = routeGlobalAgentInProcess();
    ks = await fakeKeystone({
      inProcess: true,
      users: [
        { name: 'nova', password: 'secret', project: 'service', roles: ['admin', 'service'] },
        { name: 'alice', password: 'a', project: 'demo', roles: ['member'] },
      ],
      catalog: { placement: 'http://127.0.0.1:1/placement/', image: 'http://127.0.0.1:2' },
    });
  });
  afterEach(async () => {
    await ks.close();
    restore();
  });

  it('authenticates once through pkgcloud, then reuses the token', async () => {
    const s = keystoneSession(creds());
    const t1 = await s.token();
    assert.equal(await s.token(), t1);
    assert.equal(ks.counts.issued, 1);
    s.invalidate();
    assert.notEqual(await s.token(), t1);
    assert.equal(ks.counts.issued, 2);
  });

  it('concurrent first calls share one authentication', async () => {
    const s = keystoneSession(creds());
    const all = await Promise.all([s.token(), s.token(), s.token()]);
    assert.equal(new Set(all).size, 1);
    assert.equal(ks.counts.issued, 1);
  });

  it('finds catalog endpoints by type and interface, without trailing slashes', async () => {
    const s = keystoneSession(creds());
    assert.equal(await s.endpoint('placement'), 'http://127.0.0.1:1/placement');
    assert.equal(await s.endpoint('image', 'internal'), 'http://127.0.0.1:2');
    await assert.rejects(s.endpoint('network'), (e: BerthError) => e.code === 'ENDPOINT_NOT_FOUND' && /network/.test(e.message));
    await assert.rejects(
      keystoneSession(creds({ region_name: 'Elsewhere' })).endpoint('image'),
      (e: BerthError) => e.code === 'ENDPOINT_NOT_FOUND' && /Elsewhere/.test(e.message),
    );
  });

  it('wrong credentials give AUTH_FAILED naming the user; missing options are named', async () => {
    await assert.rejects(keystoneSession(creds({ password: 'nope' })).token(), (e: BerthError) => e.code === 'AUTH_FAILED' && /nova/.test(e.message));
    assert.throws(
      () => keystoneSession(creds({ password: '' })),
      (e: BerthError) => e.code === 'INVALID_CONFIG' && /password/.test(e.message),
    );
    assert.throws(
      () => keystoneSession(creds({ auth_url: 'not a url' })),
      (e: BerthError) => e.code === 'INVALID_CONFIG',
    );
  });

  it('an unreachable keystone is a retryable SERVICE_UNREACHABLE', async () => {
    await ks.close();
    await assert.rejects(keystoneSession(creds()).token(), (e: BerthError) => e.code === 'SERVICE_UNREACHABLE' && e.retryable);
  });

  it('validates incoming tokens, caches them, and tells admin from member', async () => {
    const v = tokenValidator({ authUrl: ks.url, session: keystoneSession(creds()), agent: inProcessAgent });
    const alice = ks.issue('alice');
    const info = await v.validate(alice);
    assert.equal(info.project_name, 'demo');
    assert.equal(info.user_name, 'alice');
    assert.equal(info.is_admin, false);
    await v.validate(alice);
    assert.equal(ks.counts.validated, 1);
    assert.equal((await v.validate(ks.issue('nova'))).is_admin, true);
    await assert.rejects(v.validate('tok-unknown'), (e: BerthError) => e.code === 'AUTH_INVALID_TOKEN' && e.status === 401);
    await assert.rejects(v.validate(''), (e: BerthError) => e.code === 'AUTH_INVALID_TOKEN');
  });

  it('re-authenticates the service once when its own token was revoked', async () => {
    const v = tokenValidator({ authUrl: ks.url, session: keystoneSession(creds()), agent: inProcessAgent });
    await v.validate(ks.issue('alice'));
    ks.revokeAll();
    const bob = ks.issue('alice');
    assert.equal((await v.validate(bob)).project_name, 'demo');
    assert.equal(ks.counts.issued, 2);
  });
});
