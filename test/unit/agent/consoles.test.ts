import assert from 'node:assert/strict';
import { Duplex, PassThrough } from 'node:stream';
import sinon from 'sinon';
import { Consoles, type Listen } from '../../../agent/console/consoles.js';
import { BerthError } from '../../../common/errors.js';
import { silentLogger } from '../../../common/log.js';
import { FakeContainerRuntime } from '../../fakes/container-runtime.js';

const A = '11111111-1111-4111-8111-111111111111';
const B = '22222222-2222-4222-8222-222222222222';

/** A client end and the agent's end of one in-memory connection. */
function connection() {
  const up = new PassThrough();
  const down = new PassThrough();
  const agentEnd = Duplex.from({ readable: up, writable: down });
  const client = Duplex.from({ readable: down, writable: up });
  let got = '';
  // The agent destroying its end (an endpoint closed) aborts this one too.
  client.on('error', () => undefined);
  client.on('data', (c: Buffer) => (got += c.toString()));
  return { agentEnd, client, text: () => got };
}

const tick = () => new Promise((r) => setImmediate(r));
const settle = async (n = 5) => {
  for (let i = 0; i < n; i++) await tick();
};

/** Consoles over the fake runtime, whose guests echo their console like `cat`, and listeners that open no socket. */
describe('serial consoles (agent, over the fake runtime)', () => {
  let runtime: FakeContainerRuntime;
  let consoles: Consoles;
  const listening = new Map<number, (socket: Duplex, remote?: string) => void>();
  const closed: number[] = [];
  const listen: Listen = async (port, _host, onConnection) => {
    if (port === 10001) return null; // another program holds it
    listening.set(port, onConnection);
    return {
      close: async () => {
        listening.delete(port);
        closed.push(port);
      },
    };
  };
  const boot = async (uuid: string) => {
    runtime.images.add('sha256:img');
    await runtime.createContainer({
      uuid,
      imageId: 'sha256:img',
      glanceImageId: 'g',
      projectId: `project-${uuid.slice(0, 1)}`,
      hostname: 'h',
      flavor: { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} },
    });
  };
  const dial = (port: number, remote = '127.0.0.1') => {
    const c = connection();
    const on = listening.get(port);
    assert.ok(on, `a listener on ${port}`);
    on(c.agentEnd, remote);
    return c;
  };
  const make = (o: Partial<ConstructorParameters<typeof Consoles>[0]> = {}) =>
    new Consoles({ enabled: true, range: { start: 10000, stop: 10003 }, host: '192.0.2.7', ttlMs: 60_000, runtime, log: silentLogger(), listen, ...o });

  beforeEach(async () => {
    runtime = new FakeContainerRuntime();
    listening.clear();
    closed.length = 0;
    consoles = make();
    await boot(A);
    await boot(B);
  });
  afterEach(() => consoles.close());

  it("grants a path on the instance's endpoint; with it the connection reaches the guest, and only that guest", async () => {
    const grant = await consoles.open(A);
    assert.equal(grant.host, '192.0.2.7');
    assert.equal(grant.port, 10000);
    assert.equal(consoles.port(A), 10000);
    const other = await consoles.open(B);
    assert.equal(other.port, 10002, 'a port another program holds is skipped');
    const c = dial(grant.port);
    c.client.write(`CONNECT ${grant.path} HTTP/1.1\r\n\r\nhello A\n`);
    await settle();
    assert.equal(c.text(), 'HTTP/1.1 200 OK\r\n\r\nhello A\n');
    assert.match(await runtime.logs(A, { tail: 10, maxBytes: 1000 }), /hello A/);
    assert.doesNotMatch(await runtime.logs(B, { tail: 10, maxBytes: 1000 }), /hello A/);
  });

  it("refuses another instance's path, a spent one and none at all, passing no byte on", async () => {
    const a = await consoles.open(A);
    const b = await consoles.open(B);
    const wrong = dial(b.port);
    wrong.client.write(`CONNECT ${a.path} HTTP/1.1\r\n\r\nsecret\n`);
    const none = dial(a.port);
    none.client.write('secret\n');
    await settle();
    assert.equal(wrong.text(), 'HTTP/1.1 403 Forbidden\r\n\r\n');
    assert.equal(none.text(), 'HTTP/1.1 400 Bad Request\r\n\r\n');
    const ok = dial(a.port);
    ok.client.write(`CONNECT ${a.path} HTTP/1.1\r\n\r\n`);
    await settle();
    ok.client.end();
    await settle();
    assert.equal(consoles.port(A), null, 'spent, with no other lease: the endpoint closed');
    await consoles.open(A);
    const again = dial(a.port);
    again.client.write(`CONNECT ${a.path} HTTP/1.1\r\n\r\nsecret\n`);
    await settle();
    assert.equal(again.text(), 'HTTP/1.1 403 Forbidden\r\n\r\n');
    for (const uuid of [A, B]) assert.doesNotMatch(await runtime.logs(uuid, { tail: 10, maxBytes: 1000 }), /secret/);
  });

  it('one connection at a time: a second is refused (409) and the first keeps the console', async () => {
    const g1 = await consoles.open(A);
    const g2 = await consoles.open(A);
    assert.equal(g1.port, g2.port);
    const first = dial(g1.port);
    first.client.write(`CONNECT ${g1.path} HTTP/1.1\r\n\r\n`);
    await settle();
    const second = dial(g2.port);
    second.client.write(`CONNECT ${g2.path} HTTP/1.1\r\n\r\nnot me\n`);
    await settle();
    assert.equal(second.text(), 'HTTP/1.1 409 Conflict\r\n\r\n');
    first.client.write('still me\n');
    await settle();
    assert.match(first.text(), /still me/);
    assert.doesNotMatch(await runtime.logs(A, { tail: 10, maxBytes: 1000 }), /not me/);
  });

  it('an endpoint closes when its last lease expires with no connection, and its port is free again', async () => {
    const clock = sinon.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const g = await consoles.open(A);
      clock.tick(60_000);
      await settle();
      assert.equal(consoles.port(A), null);
      assert.deepEqual(closed, [g.port]);
      assert.equal((await consoles.open(B)).port, g.port);
    } finally {
      clock.restore();
    }
  });

  it('a port lease lets the next connection through with no first line, once; proxy_clients limits its source', async () => {
    consoles = make({ proxyClients: ['10.0.0.5'] });
    const g = await consoles.open(A, 'port');
    assert.equal(g.path, null);
    const stranger = dial(g.port, '10.0.0.9');
    stranger.client.write('from elsewhere\n');
    await settle();
    assert.equal(stranger.text(), 'HTTP/1.1 400 Bad Request\r\n\r\n');
    const proxy = dial(g.port, '::ffff:10.0.0.5');
    proxy.client.write('typed\n');
    await settle();
    assert.equal(proxy.text(), 'typed\n', 'bridged with no status line');
    const late = dial(g.port, '10.0.0.5');
    late.client.write('late\n');
    await settle();
    assert.equal(late.text(), 'HTTP/1.1 400 Bad Request\r\n\r\n');
    assert.doesNotMatch(await runtime.logs(A, { tail: 10, maxBytes: 1000 }), /elsewhere|late/);
  });

  it('refuses when disabled, for a stopped instance, and for a container without an open stdin', async () => {
    const rejects = (p: Promise<unknown>, code: string) => assert.rejects(p, (e: unknown) => e instanceof BerthError && e.code === code);
    await rejects(make({ enabled: false }).open(A), 'CONSOLE_UNAVAILABLE');
    await runtime.stop(A);
    await rejects(consoles.open(A), 'INSTANCE_INVALID_STATE');
    runtime.closeStdin(B);
    await rejects(consoles.open(B), 'CONSOLE_UNAVAILABLE');
    await rejects(consoles.open('33333333-3333-4333-8333-333333333333'), 'INSTANCE_NOT_FOUND');
    assert.equal(listening.size, 0, 'no endpoint opened for a refusal');
  });

  it('exhausts its range with CONSOLE_PORTS_EXHAUSTED; forgetting an instance frees its port', async () => {
    const C = '33333333-3333-4333-8333-333333333333';
    await boot(C);
    await consoles.open(A);
    await consoles.open(B);
    await assert.rejects(consoles.open(C), (e: unknown) => e instanceof BerthError && e.code === 'CONSOLE_PORTS_EXHAUSTED');
    await consoles.forget(A);
    assert.equal((await consoles.open(C)).port, 10000);
  });
});
