import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createAgentClient } from '../../../agent/client/http.js';
import { BerthError } from '../../../common/errors.js';
import { inProcessAgent, serveInProcess } from '../../support/in-process.js';
import { errorCode, startHarness, type AgentHarness } from './harness.js';
import { validateInstanceSpec } from '../../../agent/validate.js';

/** A Neutron bridge VIF as the compute side hands it over. */
const VIF = {
  portId: '3f1e2d4c-5b6a-4978-8a9b-0c1d2e3f4a5b',
  tap: 'tap3f1e2d4c-5b',
  bridge: 'brq9a8b7c6d-5e',
  mac: 'fa:16:3e:12:34:56',
  mtu: 1450,
  addresses: [{ address: '10.77.0.23', prefix: 24 }],
  gateway: '10.77.0.1',
  routes: [{ destination: '192.168.0.0/16', nexthop: '10.77.0.254' }],
  dns: ['10.77.0.2'],
};

describe('agent spec validation: Neutron VIFs', () => {
  it('keeps a well-formed VIF list field by field, in order', () => {
    const base = { image_id: randomUUID(), flavor: { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} }, name: 'a', hostname: 'a' };
    const spec = validateInstanceSpec({
      ...base,
      project_id: 'p',
      user_id: 'u',
      metadata: {},
      user_data: null,
      key_data: null,
      fixed_ip: null,
      vifs: [VIF, { ...VIF, tap: 'tap00000000-00' }],
    });
    assert.deepEqual(spec.vifs, [VIF, { ...VIF, tap: 'tap00000000-00' }]);
    const none = validateInstanceSpec({ ...base, project_id: 'p', user_id: 'u', metadata: {}, user_data: null, key_data: null, fixed_ip: null });
    assert.equal(none.vifs, undefined);
    assert.throws(
      () =>
        validateInstanceSpec({
          ...base,
          project_id: 'p',
          user_id: 'u',
          metadata: {},
          user_data: null,
          key_data: null,
          fixed_ip: null,
          vifs: Array(17).fill(VIF),
        }),
      /vifs must be a list of at most 16/,
    );
  });
});

describe('agent API input handling', () => {
  let h: AgentHarness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.close();
  });

  const put = (uuid: string, body: unknown) => h.raw('PUT', `/v1/instances/${uuid}`, { body: typeof body === 'string' ? body : JSON.stringify(body) });

  it('refuses requests without the right bearer token', async () => {
    for (const token of [null, '', 'wrong', `${'x'.repeat(21)}`]) {
      const res = await h.raw('GET', '/v1/instances', { token });
      assert.equal(res.status, 401, `token ${String(token)}`);
      assert.equal(errorCode(res.body), 'UNAUTHORIZED');
    }
    await assert.rejects(
      createAgentClient({ url: h.url, token: 'nope', retries: 0, agent: inProcessAgent }).listInstances(),
      (e: unknown) => e instanceof BerthError && e.code === 'UNAUTHORIZED',
    );
  });

  it('answers unknown routes with 404 and the error body', async () => {
    for (const [method, path] of [
      ['GET', '/nope'],
      ['GET', '/v1/nope'],
      ['GET', '/v2/instances'],
      ['PATCH', '/'],
    ]) {
      const res = await h.raw(method!, path!);
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.equal(errorCode(res.body), 'NOT_FOUND');
    }
    const wrongMethod = await h.raw('PATCH', `/v1/instances/${randomUUID()}`);
    assert.equal(wrongMethod.status, 405);
    assert.equal(errorCode(wrongMethod.body), 'METHOD_NOT_ALLOWED');
  });

  const badSpecs: Array<[string, (s: Record<string, unknown>) => unknown, string]> = [
    ['a body that is an array', () => [], 'request body'],
    ['no image_id', (s) => ({ ...s, image_id: undefined }), 'image_id'],
    ['an image_id that is not a uuid', (s) => ({ ...s, image_id: '../../etc/passwd' }), 'image_id'],
    ['a flavor that is a string', (s) => ({ ...s, flavor: 'm1.small' }), 'flavor'],
    ['fractional vcpus', (s) => ({ ...s, flavor: { ...(s.flavor as object), vcpus: 1.5 } }), 'flavor.vcpus'],
    ['zero vcpus', (s) => ({ ...s, flavor: { ...(s.flavor as object), vcpus: 0 } }), 'flavor.vcpus'],
    ['memory as a string', (s) => ({ ...s, flavor: { ...(s.flavor as object), memory_mb: '512' } }), 'flavor.memory_mb'],
    ["memory under Docker's floor", (s) => ({ ...s, flavor: { ...(s.flavor as object), memory_mb: 4 } }), 'flavor.memory_mb'],
    ['negative swap', (s) => ({ ...s, flavor: { ...(s.flavor as object), swap: -1 } }), 'flavor.swap'],
    ['a numeric extra spec value', (s) => ({ ...s, flavor: { ...(s.flavor as object), extra_specs: { 'quota:cpu_shares': 5 } } }), 'flavor.extra_specs'],
    ['a bad quota extra spec', (s) => ({ ...s, flavor: { ...(s.flavor as object), extra_specs: { 'quota:cpu_period': '10' } } }), 'quota:cpu_period'],
    ['an empty name', (s) => ({ ...s, name: '' }), 'name'],
    ['a hostname with a slash', (s) => ({ ...s, hostname: 'a/b' }), 'hostname'],
    ['a hostname too long', (s) => ({ ...s, hostname: 'h'.repeat(64) }), 'hostname'],
    ['a project_id object', (s) => ({ ...s, project_id: {} }), 'project_id'],
    ['no user_id', (s) => ({ ...s, user_id: undefined }), 'user_id'],
    ['metadata as a list', (s) => ({ ...s, metadata: ['a'] }), 'metadata'],
    ['a metadata value number', (s) => ({ ...s, metadata: { a: 1 } }), 'metadata.a'],
    ['user_data not base64', (s) => ({ ...s, user_data: '#!/bin/sh\necho hi' }), 'user_data'],
    ['a fixed_ip that is not IPv4', (s) => ({ ...s, fixed_ip: '10.0.0.300' }), 'fixed_ip'],
    ['a malformed request_id', (s) => ({ ...s, request_id: 'req-1' }), 'request_id'],
    ['vifs that are not a list', (s) => ({ ...s, vifs: { a: 1 } }), 'vifs'],
    ['a VIF tap with a shell character', (s) => ({ ...s, vifs: [{ ...VIF, tap: 'tap;rm -rf /x' }] }), 'vifs[0].tap'],
    ['a VIF bridge not of a network', (s) => ({ ...s, vifs: [{ ...VIF, bridge: 'docker0' }] }), 'vifs[0].bridge'],
    ['a VIF MAC that is not one', (s) => ({ ...s, vifs: [{ ...VIF, mac: 'fa:16:3e:zz:00:01' }] }), 'vifs[0].mac'],
    ['a VIF MTU below IPv4 minimum', (s) => ({ ...s, vifs: [{ ...VIF, mtu: 100 }] }), 'vifs[0].mtu'],
    ['a VIF address not IPv4', (s) => ({ ...s, vifs: [{ ...VIF, addresses: [{ address: '10.77.0.300', prefix: 24 }] }] }), 'vifs[0].addresses[0].address'],
    [
      'a VIF route not a CIDR',
      (s) => ({ ...s, vifs: [{ ...VIF, routes: [{ destination: '10.0.0.0', nexthop: '10.77.0.1' }] }] }),
      'vifs[0].routes[0].destination',
    ],
    ['a VIF DNS server not IPv4', (s) => ({ ...s, vifs: [{ ...VIF, dns: ['dns.example'] }] }), 'vifs[0].dns[0]'],
  ];
  for (const [what, mutate, field] of badSpecs) {
    it(`refuses a spec with ${what}: 400 INVALID_INPUT naming ${field}`, async () => {
      const res = await put(randomUUID(), mutate(h.spec() as unknown as Record<string, unknown>));
      assert.equal(res.status, 400);
      assert.equal(errorCode(res.body), 'INVALID_INPUT');
      assert.ok((res.body as { error: { message: string } }).error.message.includes(field), JSON.stringify(res.body));
    });
  }

  it('refuses bad JSON (400), a non-JSON content type (415) and oversize bodies (413)', async () => {
    const uuid = randomUUID();
    assert.equal((await put(uuid, '{"image_id": ')).status, 400);
    const typed = await h.raw('PUT', `/v1/instances/${uuid}`, { body: 'x', headers: { 'content-type': 'text/plain' } });
    assert.equal(typed.status, 415);
    const big = await put(uuid, { ...h.spec(), name: 'n'.repeat(10_000) });
    assert.equal(big.status, 413);
    assert.equal(errorCode(big.body), 'BODY_TOO_LARGE');
    assert.equal((await put(uuid, '')).status, 400);
  });

  it('refuses ids that are not lowercase uuids, including path tricks', async () => {
    const paths = [
      '/v1/instances/..%2F..%2Fetc%2Fpasswd',
      '/v1/instances/%2e%2e',
      `/v1/instances/${randomUUID().toUpperCase()}`,
      '/v1/instances/%E0%A4%A',
      '/v1/instances/%00',
      `/v1/instances/${'a'.repeat(5000)}`,
      '/v1/instances/berth-x/console',
    ];
    for (const path of paths) {
      for (const method of ['GET', 'DELETE']) {
        const res = await h.raw(method, path);
        assert.ok(res.status >= 400 && res.status < 500, `${method} ${path} → ${res.status}`);
      }
    }
    const res = await h.raw('GET', '/v1/instances/..%2F..%2Fetc%2Fpasswd');
    assert.equal(res.status, 400);
    assert.equal(errorCode(res.body), 'INVALID_INPUT');
  });

  it('refuses bad actions and query parameters', async () => {
    const uuid = randomUUID();
    await h.client.createInstance(uuid, h.spec());
    const action = (body: unknown) => h.raw('POST', `/v1/instances/${uuid}/action`, { body: JSON.stringify(body) });
    for (const body of [
      {},
      { action: 'explode' },
      { action: 'stop', timeout: -1 },
      { action: 'stop', timeout: '5' },
      { action: 'reboot', hard: 'yes' },
      null,
      'stop',
    ]) {
      const res = await action(body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(errorCode(res.body), 'INVALID_INPUT');
    }
    for (const q of ['tail=abc', 'tail=-1', 'tail=100000', 'tail=1&tail=2', 'tail=1e3']) {
      assert.equal((await h.raw('GET', `/v1/instances/${uuid}/console?${q}`)).status, 400, q);
    }
    assert.equal((await h.raw('DELETE', `/v1/instances/${uuid}?timeout=soon`)).status, 400);
  });

  it('never answers 5xx to random bodies', async () => {
    const values: unknown[] = [null, true, 0, -1, 1e308, 'x', '', [], {}, [1, 2], { a: { b: null } }, 'é\u0000'];
    const fields = ['image_id', 'flavor', 'name', 'hostname', 'project_id', 'user_id', 'metadata', 'user_data', 'key_data', 'fixed_ip', 'request_id'];
    let seed = 7;
    const next = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 150; i++) {
      const spec = h.spec() as unknown as Record<string, unknown>;
      const flavor = { ...(spec.flavor as Record<string, unknown>) };
      spec.flavor = flavor;
      for (let k = 0; k <= next(3); k++) {
        const v = values[next(values.length)];
        if (next(3) === 0) flavor[['vcpus', 'memory_mb', 'root_gb', 'swap', 'extra_specs'][next(5)]!] = v;
        else spec[fields[next(fields.length)]!] = v;
      }
      const res = await put(randomUUID(), spec);
      assert.ok(res.status < 500, `${JSON.stringify(spec)} → ${res.status} ${JSON.stringify(res.body)}`);
    }
  });

  it('client: a refused connection is retried, then SERVICE_UNREACHABLE (retryable)', async () => {
    // An origin nothing is served at: the in-process agent refuses the connection, as a closed port does.
    const served = serveInProcess(() => undefined);
    await served.close();
    const started = Date.now();
    const client = createAgentClient({ url: served.base, token: 't', retries: 2, backoffMs: 50, agent: inProcessAgent });
    await assert.rejects(client.listInstances(), (e: unknown) => e instanceof BerthError && e.code === 'SERVICE_UNREACHABLE' && e.retryable);
    assert.ok(Date.now() - started >= 50, 'backed off between attempts');
  });
});
