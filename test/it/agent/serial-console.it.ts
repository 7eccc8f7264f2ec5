import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import type { AgentClient, InstanceSpec, SerialConsoleGrant } from '../../../agent/client/types.js';
import { projectNetworkName } from '../../../agent/network/project-networks.js';
import { LABEL_INSTANCE, LABEL_PROJECT } from '../../../agent/runtime/types.js';
import { BerthError } from '../../../common/errors.js';
import { connectConsole } from '../../../tools/lib/console-client.js';
import { collect, consoleGuestImage } from '../../support/console-guest.js';
import { TEST_IMAGE, docker, imageIdOf, saveImage, startTestAgent, type TestAgent } from './docker-helpers.js';

const PROJECT = 'berth-it-console';
const OTHER = 'berth-it-console-other';
const PORTS = { start: 44310, stop: 44318 };
const TTL_S = 3;

/** The agent's serial consoles on the real dockerd: Docker's attach behind the agent's one-time leases. */
describe('serial consoles of the agent on dockerd', function () {
  this.timeout(120_000);
  let t: TestAgent;
  let client: AgentClient;
  let guestImage: string;
  const uuids: string[] = [];
  /** Containers made here directly, not through the agent. */
  const foreign: string[] = [];

  const spec = (project = PROJECT): InstanceSpec => ({
    image_id: guestImage,
    flavor: { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} },
    name: 'console-vm',
    hostname: 'console-guest',
    project_id: project,
    user_id: 'tester',
    metadata: {},
    user_data: null,
    key_data: null,
    fixed_ip: null,
  });
  const boot = async (project = PROJECT): Promise<string> => {
    const uuid = randomUUID();
    uuids.push(uuid);
    await client.createInstance(uuid, spec(project));
    return uuid;
  };
  const connectInfo = (g: SerialConsoleGrant) => ({ host: g.host, port: g.port, internal_access_path: g.path });
  /** Sends `head` raw and returns what the endpoint answers before it closes (or within 3 s). */
  const rawExchange = (port: number, head: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const s: Socket = connect({ host: '127.0.0.1', port });
      let got = '';
      s.on('data', (c: Buffer) => (got += c.toString('latin1')));
      s.on('error', reject);
      s.on('close', () => resolve(got));
      s.on('connect', () => s.write(head));
      setTimeout(() => s.destroy(), 3000);
    });
  const rejectsWith = async (p: Promise<unknown>, code: string) => {
    await assert.rejects(p, (err: unknown) => err instanceof BerthError && err.code === code);
  };

  before(async () => {
    const ref = await consoleGuestImage();
    t = await startTestAgent({
      serial_console: { enabled: true, port_range: `${PORTS.start}:${PORTS.stop}`, proxyclient_address: '127.0.0.1', token_ttl: TTL_S },
    });
    client = t.client;
    guestImage = randomUUID();
    t.store.add(guestImage, { docker_image_id: await imageIdOf(ref) }, () => saveImage(ref));
  });

  after(async () => {
    await t?.close(PROJECT, []);
    for (const id of [...uuids, ...foreign]) await docker('DELETE', `/containers/berth-${id}?force=1&v=1`, undefined, [404, 409]);
    await docker('DELETE', `/networks/${projectNetworkName(OTHER)}`, undefined, [404, 403, 409]).catch(() => undefined);
  });

  it("round trip: a line typed on the console runs in the guest's shell and its output comes back", async () => {
    const uuid = await boot();
    const grant = await client.openSerialConsole(uuid);
    assert.equal(grant.host, '127.0.0.1');
    assert.ok(grant.port >= PORTS.start && grant.port < PORTS.stop, `port ${grant.port} in the range`);
    assert.equal(await client.serialConsolePort(uuid), grant.port);
    const { socket } = await connectConsole(connectInfo(grant));
    const out = collect(socket);
    socket.write(`echo "hello from $(hostname)"\n`);
    await out.waitFor('hello from console-guest');
    socket.end();
    await new Promise((r) => socket.on('close', r));
    // The guest's stdin stays open for the next console: a second grant works, and the same shell answers.
    const again = await connectConsole(connectInfo(await client.openSerialConsole(uuid)));
    const out2 = collect(again.socket);
    again.socket.write('echo second-$((40+2))\n');
    await out2.waitFor('second-42');
    again.socket.destroy();
  });

  it('refuses a connection without a valid token, and none of its bytes reach the guest', async () => {
    const uuid = await boot();
    const grant = await client.openSerialConsole(uuid);
    assert.match(await rawExchange(grant.port, 'echo leaked-marker\n\r\n\r\n'), /^HTTP\/1\.1 400 /);
    assert.match(await rawExchange(grant.port, 'CONNECT /berth-console?token=forged HTTP/1.1\r\n\r\necho leaked-marker\n'), /^HTTP\/1\.1 403 /);
    // The real grant still works (a refusal spends nothing), and the guest saw none of the refused input.
    const { socket } = await connectConsole(connectInfo(grant));
    const out = collect(socket);
    socket.write('echo ok-$((1+1))\n');
    await out.waitFor('ok-2');
    socket.destroy();
    assert.ok(!(await client.consoleLog(uuid, 100)).includes('leaked-marker'));
  });

  it('a token is good once: the same path again is refused', async () => {
    const uuid = await boot();
    const grant = await client.openSerialConsole(uuid);
    const first = await connectConsole(connectInfo(grant));
    first.socket.destroy();
    await rejectsWith(connectConsole(connectInfo(grant)), 'CONSOLE_REFUSED');
  });

  it('one connection at a time: a second authorised connection is refused while the first is open', async () => {
    const uuid = await boot();
    const a = await connectConsole(connectInfo(await client.openSerialConsole(uuid)));
    const second = await client.openSerialConsole(uuid);
    await assert.rejects(connectConsole(connectInfo(second)), /in use/);
    const out = collect(a.socket);
    a.socket.write('echo still-mine\n');
    await out.waitFor('still-mine');
    a.socket.destroy();
  });

  it('a lease expires after token_ttl: then its endpoint closes and the path gets nowhere', async () => {
    const uuid = await boot();
    const grant = await client.openSerialConsole(uuid);
    await new Promise((r) => setTimeout(r, TTL_S * 1000 + 500));
    assert.equal(await client.serialConsolePort(uuid), null, 'endpoint closed with its last lease');
    await assert.rejects(connectConsole(connectInfo(grant)));
  });

  it("a token of one instance does not open another's console, across projects", async () => {
    const mine = await boot();
    const theirs = await boot(OTHER);
    const a = await client.openSerialConsole(mine);
    const b = await client.openSerialConsole(theirs);
    assert.notEqual(a.port, b.port);
    await rejectsWith(connectConsole({ host: b.host, port: b.port, internal_access_path: a.path }), 'CONSOLE_REFUSED');
    const { socket } = await connectConsole(connectInfo(b));
    const out = collect(socket);
    socket.write('echo "in $(hostname) of other"\n');
    await out.waitFor('in console-guest of other');
    socket.destroy();
  });

  it('a port lease (nova mode) lets the next connection through with no first line, once', async () => {
    const uuid = await boot();
    const grant = await client.openSerialConsole(uuid, 'port');
    assert.equal(grant.path, null);
    const { socket } = await connectConsole({ host: grant.host, port: grant.port, internal_access_path: null });
    const out = collect(socket);
    socket.write('echo port-$((3*3))\n');
    await out.waitFor('port-9');
    // Without a lease left, a connection with no first line gets nothing through.
    assert.match(await rawExchange(grant.port, 'echo leaked-marker\n'), /^HTTP\/1\.1 400 /);
    socket.destroy();
    assert.ok(!(await client.consoleLog(uuid, 100)).includes('leaked-marker'));
  });

  it('refuses a stopped instance, and a container created without an open stdin (CONSOLE_UNAVAILABLE)', async () => {
    const uuid = await boot();
    await client.instanceAction(uuid, { action: 'stop' });
    await rejectsWith(client.openSerialConsole(uuid), 'INSTANCE_INVALID_STATE');
    // A container as a Berth without consoles created it: no open stdin.
    const old = randomUUID();
    foreign.push(old);
    await docker('POST', `/containers/create?name=berth-${old}`, {
      Image: await imageIdOf(TEST_IMAGE),
      Labels: { [LABEL_INSTANCE]: old, [LABEL_PROJECT]: PROJECT },
      OpenStdin: false,
      HostConfig: { NetworkMode: 'none' },
    });
    await docker('POST', `/containers/berth-${old}/start`);
    await rejectsWith(client.openSerialConsole(old), 'CONSOLE_UNAVAILABLE');
  });

  it('the range exhausted is CONSOLE_PORTS_EXHAUSTED; a port freed by a deleted instance is taken by the next', async () => {
    // The instances of the tests above (their leases expired), then new ones, each with a console open, until the range is full.
    const running: string[] = [];
    for (const id of uuids) if ((await client.getInstance(id))?.power_state === 'running') running.push(id);
    const held: string[] = [];
    let next = 0;
    for (;;) {
      const uuid = next < running.length ? running[next++]! : await boot();
      const got = await client.openSerialConsole(uuid).catch((err: unknown) => err);
      if (got instanceof BerthError) {
        assert.equal(got.code, 'CONSOLE_PORTS_EXHAUSTED');
        assert.equal(held.length, PORTS.stop - PORTS.start);
        await client.deleteInstance(held[0]!);
        const grant = await client.openSerialConsole(uuid);
        assert.ok(grant.port >= PORTS.start && grant.port < PORTS.stop);
        return;
      }
      held.push(uuid);
      assert.ok(held.length <= PORTS.stop - PORTS.start, 'no more endpoints than ports');
    }
  });
});
