import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { BerthError } from '../../../common/errors.js';
import { formatCidr, macFor, netmaskOf, parseCidr, requirePool } from '../../../agent/network/ipv4.js';
import { projectNetworkName } from '../../../agent/network/project-networks.js';
import { errorCode, startHarness, type AgentHarness } from './harness.js';

describe('agent project networks', () => {
  let h: AgentHarness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  const create = (project: string, fixed_ip: string | null = null) => h.client.createInstance(randomUUID(), h.spec({ project_id: project, fixed_ip }));

  it('gives each project its own subnet from the pool and instances successive addresses', async () => {
    const a1 = await create('proj-a');
    const a2 = await create('proj-a');
    const b1 = await create('proj-b');
    assert.equal(a1.ip_address, '10.99.0.2');
    assert.equal(a2.ip_address, '10.99.0.3');
    assert.equal(b1.ip_address, '10.99.1.2');
    const res = await h.raw('GET', '/v1/networks');
    assert.deepEqual((res.body as { networks: unknown[] }).networks, [
      { project_id: 'proj-a', subnet: '10.99.0.0/24', gateway: '10.99.0.1' },
      { project_id: 'proj-b', subnet: '10.99.1.0/24', gateway: '10.99.1.1' },
    ]);
    assert.equal(h.runtime.networks.get(projectNetworkName('proj-a'))?.projectId, 'proj-a');
  });

  it('gives concurrent creates in one project distinct addresses', async () => {
    const made = await Promise.all(Array.from({ length: 8 }, () => create('proj-par')));
    const ips = made.map((m) => m.ip_address);
    assert.equal(new Set(ips).size, 8, `duplicate addresses: ${ips.join(', ')}`);
  });

  it('skips subnets other networks already use', async () => {
    h.runtime.networks.set('other', { name: 'other', projectId: null, subnets: ['10.99.0.128/25'] });
    assert.equal((await create('proj-c')).ip_address, '10.99.1.2');
  });

  it('takes a fixed IP inside the project subnet and refuses one outside it or already taken', async () => {
    await create('proj-a');
    assert.equal((await create('proj-a', '10.99.0.77')).ip_address, '10.99.0.77');
    for (const ip of ['10.99.0.77', '10.99.1.5', '10.99.0.1', '10.99.0.255']) {
      const uuid = randomUUID();
      const res = await h.raw('PUT', `/v1/instances/${uuid}`, { body: JSON.stringify(h.spec({ project_id: 'proj-a', fixed_ip: ip })) });
      assert.equal(res.status, 400, ip);
      assert.equal(errorCode(res.body), 'INVALID_INPUT');
      assert.equal(h.runtime.containers.has(uuid), false);
    }
  });

  it('answers SUBNET_POOL_EXHAUSTED when the pool has no free subnet', async () => {
    for (const p of ['p1', 'p2', 'p3', 'p4']) await create(p);
    const res = await h.raw('PUT', `/v1/instances/${randomUUID()}`, { body: JSON.stringify(h.spec({ project_id: 'p5' })) });
    assert.equal(res.status, 503);
    assert.equal(errorCode(res.body), 'SUBNET_POOL_EXHAUSTED');
  });

  it("removes a project's network with its last instance, not before, and recreates it on demand", async () => {
    const keep = await create('proj-a');
    const [b1, b2] = [await create('proj-b'), await create('proj-b')];
    await h.client.deleteInstance(b1.uuid);
    assert.ok(h.runtime.networks.has(projectNetworkName('proj-b')), 'an instance is left in proj-b');
    await h.client.deleteInstance(b2.uuid);
    assert.equal(h.runtime.networks.has(projectNetworkName('proj-b')), false);
    assert.ok(h.runtime.networks.has(projectNetworkName('proj-a')));
    assert.equal(keep.ip_address, '10.99.0.2');
    assert.equal((await create('proj-b')).ip_address, '10.99.1.2');
  });

  it('prunes only networks without instances, and never those another host on the engine made', async () => {
    await create('proj-a');
    // Left by instances removed while the agent was down, and one of another compute host.
    h.runtime.networks.set(projectNetworkName('proj-old'), { name: projectNetworkName('proj-old'), projectId: 'proj-old', subnets: ['10.99.2.0/24'] });
    const theirs = { name: projectNetworkName('proj-theirs'), projectId: 'proj-theirs', subnets: ['10.99.3.0/24'], ownedHere: false };
    h.runtime.networks.set(theirs.name, theirs);
    const res = await h.raw('POST', '/v1/networks/prune');
    assert.deepEqual(res.body, { removed: ['proj-old'] });
    assert.ok(h.runtime.networks.has(projectNetworkName('proj-a')));
    assert.ok(h.runtime.networks.has(theirs.name));
  });

  it('serializes concurrent creates in one project onto distinct addresses', async () => {
    const all = await Promise.all(Array.from({ length: 5 }, () => create('proj-z')));
    assert.equal(new Set(all.map((s) => s.ip_address)).size, 5);
  });
});

describe('IPv4 helpers', () => {
  it('parses CIDRs, refusing host bits and nonsense', () => {
    assert.equal(formatCidr(parseCidr('172.30.0.0/16')!), '172.30.0.0/16');
    assert.equal(parseCidr('172.30.0.1/16'), null);
    assert.equal(parseCidr('300.1.1.0/24'), null);
    assert.equal(parseCidr('10.0.0.0/33'), null);
    assert.equal(parseCidr('nope'), null);
  });
  it('derives netmask and Docker-style MAC', () => {
    assert.equal(netmaskOf(24), '255.255.255.0');
    assert.equal(netmaskOf(20), '255.255.240.0');
    assert.equal(macFor('172.30.0.2'), '02:42:ac:1e:00:02');
  });
  it('refuses a pool that is not a CIDR or is smaller than one subnet', () => {
    assert.throws(() => requirePool('172.30.0.0', 24), BerthError);
    assert.throws(() => requirePool('172.30.0.0/25', 24), BerthError);
  });
});
