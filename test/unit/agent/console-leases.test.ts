import assert from 'node:assert/strict';
import { PassThrough, Duplex } from 'node:stream';
import sinon from 'sinon';
import { ConsoleLeases } from '../../../agent/console/leases.js';
import { parsePortRange, PortPool } from '../../../agent/console/ports.js';
import { consolePath, readHead } from '../../../agent/console/handshake.js';
import { createBody } from '../../../agent/runtime/docker-create-body.js';
import { BerthError } from '../../../common/errors.js';

const A = '11111111-1111-4111-8111-111111111111';
const B = '22222222-2222-4222-8222-222222222222';
const tokenOf = (path: string) => new URL(path, 'http://x').searchParams.get('token')!;

describe('serial console leases', () => {
  let clock: sinon.SinonFakeTimers;
  let expired: string[];
  let leases: ConsoleLeases;
  beforeEach(() => {
    clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    expired = [];
    leases = new ConsoleLeases({ ttlMs: 60_000, onExpired: (uuid) => expired.push(uuid) });
  });
  afterEach(() => clock.restore());

  it('a token is good once, for its own port, until it expires', () => {
    const lease = leases.issue(A, 10000);
    assert.match(lease.token, /^[A-Za-z0-9_-]{32}$/);
    assert.equal(lease.expiresAt, Date.now() + 60_000);
    assert.deepEqual(leases.claim(10001, lease.token), { ok: false, reason: 'wrong_port' });
    assert.equal(leases.pending(A), 1, 'a claim on the wrong port spends nothing');
    const ok = leases.claim(10000, lease.token);
    assert.ok(ok.ok && ok.lease.uuid === A);
    assert.deepEqual(leases.claim(10000, lease.token), { ok: false, reason: 'unknown' });
    assert.equal(leases.pending(A), 0);
  });

  it('expires after the ttl: the token is unknown and the instance is reported once', () => {
    const lease = leases.issue(A, 10000);
    leases.issue(B, 10001);
    clock.tick(59_999);
    assert.equal(leases.pending(A), 1);
    assert.deepEqual(expired, []);
    clock.tick(1);
    assert.deepEqual(expired.sort(), [A, B]);
    assert.deepEqual(leases.claim(10000, lease.token), { ok: false, reason: 'unknown' });
    assert.equal(leases.pending(A), 0);
  });

  it("distinct tokens, each bound to its instance; revoke drops an instance's leases only", () => {
    const a1 = leases.issue(A, 10000);
    const a2 = leases.issue(A, 10000);
    const b = leases.issue(B, 10001);
    assert.notEqual(a1.token, a2.token);
    assert.deepEqual(leases.claim(10000, b.token), { ok: false, reason: 'wrong_port' });
    leases.revoke(A);
    assert.equal(leases.pending(A), 0);
    assert.equal(leases.pending(B), 1);
    clock.tick(60_000);
    assert.deepEqual(expired, [B], 'revoked leases never report an expiry');
  });

  it('a port lease is taken by the next connection on its port, not by a token, and not twice', () => {
    const p = leases.issue(A, 10000, 'port');
    assert.ok(leases.hasPortLease(10000));
    assert.ok(!leases.hasPortLease(10001));
    assert.deepEqual(leases.claim(10000, p.token), { ok: false, reason: 'unknown' });
    const got = leases.claimPort(10000);
    assert.ok(got.ok && got.lease.uuid === A && got.lease.kind === 'port');
    assert.deepEqual(leases.claimPort(10000), { ok: false, reason: 'no_port_lease' });
    leases.issue(A, 10000, 'port');
    clock.tick(60_000);
    assert.deepEqual(leases.claimPort(10000), { ok: false, reason: 'no_port_lease' });
  });
});

describe('serial console ports', () => {
  it('parses START:STOP and refuses anything else', () => {
    assert.deepEqual(parsePortRange('10000:20000'), { start: 10000, stop: 20000 });
    for (const bad of ['20000:10000', '5:5', '0:10', '1:70000', '10000-20000', 'x']) {
      assert.throws(
        () => parsePortRange(bad),
        (e: unknown) => e instanceof BerthError && e.code === 'INVALID_INPUT',
        bad,
      );
    }
  });

  it('takes ports in order, skips those held here and those another program has, and is exhausted with CONSOLE_PORTS_EXHAUSTED', async () => {
    const pool = new PortPool({ start: 10000, stop: 10003 });
    const tried: number[] = [];
    const taken = new Set([10001]);
    const listen = async (port: number) => {
      tried.push(port);
      return taken.has(port) ? null : `server-${port}`;
    };
    assert.deepEqual(await pool.take(listen), { port: 10000, value: 'server-10000' });
    assert.deepEqual(await pool.take(listen), { port: 10002, value: 'server-10002' });
    assert.deepEqual(tried, [10000, 10001, 10002]);
    await assert.rejects(pool.take(listen), (e: unknown) => e instanceof BerthError && e.code === 'CONSOLE_PORTS_EXHAUSTED' && e.status === 503);
    pool.release(10000);
    assert.equal((await pool.take(listen)).port, 10000);
  });

  it('a listen that throws counts as a taken port', async () => {
    const pool = new PortPool({ start: 10000, stop: 10002 });
    let n = 0;
    const got = await pool.take(async (port) => {
      if (n++ === 0) throw new Error('EACCES');
      return port;
    });
    assert.equal(got.port, 10001);
  });
});

describe('serial console first line', () => {
  const pipe = () => {
    const toServer = new PassThrough();
    const fromServer = new PassThrough();
    return { client: toServer, server: Duplex.from({ readable: toServer, writable: fromServer }) };
  };

  it("reads CONNECT <path> HTTP/1.1 and hands on what follows as the user's input", async () => {
    const { client, server } = pipe();
    const head = readHead(server, { timeoutMs: 1000 });
    client.write(`CONNECT ${consolePath('a/b+c')} HTTP/1.1\r\n`);
    client.write('\r\necho hi\n');
    const h = await head;
    assert.ok(h.ok);
    assert.equal(h.token, 'a/b+c');
    assert.equal(h.rest.toString(), 'echo hi\n');
    assert.equal(tokenOf(consolePath('t')), 't');
  });

  it('anything else is 400 with its bytes; silence is 408 (at once with idleMs)', async () => {
    let { client, server } = pipe();
    let head = readHead(server, { timeoutMs: 1000 });
    client.write('echo hi\n');
    assert.deepEqual(await head, { ok: false, status: 400, raw: Buffer.from('echo hi\n') });
    ({ client, server } = pipe());
    head = readHead(server, { timeoutMs: 1000 });
    client.write('CONNECT /berth-console HTTP/1.1\r\n\r\n');
    assert.deepEqual(await head, { ok: false, status: 400 });
    const clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      ({ server } = pipe());
      head = readHead(server, { timeoutMs: 10_000, idleMs: 300 });
      clock.tick(300);
      assert.deepEqual(await head, { ok: false, status: 408, raw: Buffer.alloc(0) });
      ({ server } = pipe());
      head = readHead(server, { timeoutMs: 10_000 });
      clock.tick(10_000);
      assert.deepEqual(await head, { ok: false, status: 408 });
    } finally {
      clock.restore();
    }
  });
});

describe('containers are created for a console', () => {
  it('with an open stdin kept between consoles, and no TTY (the console log keeps its frames)', () => {
    const body = createBody(
      {
        uuid: A,
        imageId: 'sha256:abc',
        glanceImageId: 'img',
        projectId: 'p',
        hostname: 'h',
        flavor: { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} },
      },
      'no',
      'node-1',
      'agent',
    );
    assert.equal(body.OpenStdin, true);
    assert.equal(body.StdinOnce, false);
    assert.equal(body.Tty, false);
  });
});
