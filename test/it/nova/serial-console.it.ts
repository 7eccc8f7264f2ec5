import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { removeContainersOf } from '../../../tools/lib/stack.js';
import { startNovaNode, type NovaNode } from '../../../tools/lib/nova-node.js';
import { serialProxyUrl } from '../../../tools/lib/serial-proxy.js';
import { loadTestCloud, openstack } from '../../support/cloud.js';
import { consoleGuestImage } from '../../support/console-guest.js';
import { waitUntil } from '../../support/waits.js';
import { TestWebSocket } from '../../support/websocket.js';

const run = promisify(execFile);
const REGISTRY = process.env.BERTH_TEST_REGISTRY ?? '127.0.0.1:5000';
/** The node's grants last this long; nova's tokens 600 s. */
const TTL_S = 20;

/**
 * A Berth node's serial consoles through the test cloud's nova-serialproxy, driven as a user
 * does: `openstack console url show --serial`, then a WebSocket to that URL. nova-api asks the
 * node (get_serial_console), which has the agent open the instance's endpoint and stores nova's
 * ConsoleAuthToken through nova-conductor; nova-serialproxy validates the token, asks the node
 * validate_console_port, connects to the agent's endpoint and sends the one-time path.
 */
describe('serial console through nova-serialproxy (control_plane = nova)', function () {
  this.timeout(600_000);
  let HOST = 'berth-it-console';
  let node: NovaNode;
  let server = '';

  const consoleUrl = async (id: string) => (await openstack<{ type: string; url: string }>(['console', 'url', 'show', '--serial', id], { json: true })).url;

  before(async () => {
    const cloud = loadTestCloud();
    const offset = cloud.vars.BERTH_CLOUD_PORT_OFFSET ?? '0';
    if (offset !== '0') HOST = `${HOST}-${offset}`;
    const image = (await consoleGuestImage()).slice(REGISTRY.length + 1);
    node = await startNovaNode(cloud, {
      host: HOST,
      registry: REGISTRY,
      image,
      overrides: {
        serial_console: {
          port_range: '44320:44330',
          proxyclient_address: '127.0.0.1',
          base_url: serialProxyUrl(cloud),
          token_ttl: TTL_S,
          proxy_clients: ['127.0.0.1'],
        },
      },
    });
    // Mapped to cell1 by the scheduler's periodic discovery (a node whose record was deleted is new again).
    await waitUntil(
      async () =>
        (
          await openstack<Array<{ 'Hypervisor Hostname': string; State: string }>>(['--os-compute-api-version', '2.87', 'hypervisor', 'list'], {
            json: true,
          })
        ).find((h) => h['Hypervisor Hostname'] === HOST && h.State === 'up'),
      90_000,
      'the node listed as a hypervisor',
      2000,
    );
    const s = await openstack<{ id: string; status: string }>(
      ['server', 'create', '--image', node.imageId, '--flavor', 'm1.tiny', '--nic', 'none', '--host', HOST, '--wait', 'berth-console-vm'],
      { json: true, timeoutMs: 240_000 },
    );
    server = s.id;
    assert.equal(s.status, 'ACTIVE');
  });

  after(async () => {
    if (server) await openstack(['server', 'delete', '--wait', server], { timeoutMs: 120_000 }).catch(() => undefined);
    if (server) await removeContainersOf(server);
    await node?.stop();
    // The node's service record goes with the test: a down node left behind would be counted by later runs.
    const rows = await openstack<Array<{ ID: string; Host: string }>>(['compute', 'service', 'list', '--service', 'nova-compute'], { json: true }).catch(
      () => [],
    );
    for (const r of rows) if (r.Host === HOST) await openstack(['compute', 'service', 'delete', r.ID]).catch(() => undefined);
  });

  it("console url show --serial gives a URL of the cloud's serial proxy with a token", async () => {
    const url = await consoleUrl(server);
    assert.ok(url.startsWith(serialProxyUrl(loadTestCloud())), url);
    assert.match(url, /\?token=[0-9a-f-]{36}$/);
  });

  it("a WebSocket to that URL is the guest's console: a line typed runs in its shell, its output comes back", async () => {
    const ws = await TestWebSocket.open(await consoleUrl(server));
    try {
      ws.send('echo "serial-$((6*7)) on $(hostname)"\n');
      await waitUntil(() => /serial-42 on /.test(ws.text()), 30_000, `the echo on the console (got ${JSON.stringify(ws.text())})`, 100);
      // The line went through the guest's own shell, so its console log has it too.
      const log = String(await openstack(['console', 'log', 'show', server]));
      assert.match(log, /serial-42 on /);
    } finally {
      ws.close();
    }
  });

  it("Tempest's own WebSocket client (tempest.common.compute, as its serial console test uses it) gets the guest's answer", async () => {
    const script = [
      'import sys, socket',
      'from tempest.common import compute',
      'socket.setdefaulttimeout(30)',
      'ws = compute.create_websocket(sys.argv[1])',
      'ws.send_frame(b"echo tempest-$((6*7))\\n")',
      'out = ""',
      'while "tempest-42" not in out:',
      '    frame = ws.receive_frame()',
      '    if not frame: break',
      '    out += frame.decode() if isinstance(frame, bytes) else frame',
      'ws.close()',
      'print(out)',
    ].join('\n');
    const env = { PATH: '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' };
    const { stdout } = await run('/usr/bin/python3', ['-c', script, await consoleUrl(server)], { env, timeout: 60_000 });
    assert.match(stdout, /tempest-42/);
  });

  it('a second console while one is open is refused (one connection per console); the first keeps working', async () => {
    const first = await TestWebSocket.open(await consoleUrl(server));
    try {
      const second = await TestWebSocket.open(await consoleUrl(server)).catch(() => null);
      if (second) {
        // websockify accepts the upgrade, then closes when the node's endpoint refuses the proxy.
        await waitUntil(() => second.closed, 30_000, 'the second console closed by the proxy', 100);
        assert.equal(second.text(), '');
      }
      first.send('echo first-still-$((2+3))\n');
      await waitUntil(() => first.text().includes('first-still-5'), 30_000, 'the first console answering', 100);
    } finally {
      first.close();
    }
  });

  it("a forged token gets no console; nor, once the node's grants expired ([serial_console] token_ttl), a URL nova still holds valid", async () => {
    const forged = (await consoleUrl(server)).replace(/token=.*$/, 'token=00000000-0000-4000-8000-000000000000');
    const used = await consoleUrl(server);
    const ws = await TestWebSocket.open(used);
    ws.send('echo used-$((1+1))\n');
    await waitUntil(() => ws.text().includes('used-2'), 30_000, 'the first use of the URL', 100);
    ws.close();
    const unused = await consoleUrl(server);
    // Every grant of the node has now expired (nova's own token lives 600 s): its endpoint is closed.
    await new Promise((r) => setTimeout(r, (TTL_S + 1) * 1000));
    for (const u of [forged, used, unused]) {
      const refused = await TestWebSocket.open(u).catch(() => null);
      if (!refused) continue;
      refused.send('echo must-not-run\n');
      await waitUntil(() => refused.closed, 30_000, 'the refused console closed', 100);
      assert.equal(refused.text(), '');
    }
    assert.doesNotMatch(String(await openstack(['console', 'log', 'show', server])), /must-not-run/);
  });
});
