import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { InstanceSpec, InstanceStatus } from '../../../agent/client/types.js';
import { GuestFirewall } from '../../../agent/network/guest-firewall.js';
import { execWithStatus, startTestAgent, type TestAgent } from './docker-helpers.js';

const RUN = randomUUID().slice(0, 8);
const PROJECT = `berth-it-fw-${RUN}`;
const CHAIN = `BERTH-IT-${RUN}`;

/** From inside a real container: the host's Berth ports are refused, other host ports answer (real iptables and dockerd). */
describe('berth-agent guest firewall on dockerd', function () {
  this.timeout(120_000);
  let t: TestAgent;
  let other: Server;
  let blocked: Server;
  let guest: InstanceStatus;

  const port = (s: Server): number => (s.address() as AddressInfo).port;
  const serve = async (): Promise<Server> => {
    const s = createServer((_req, res) => {
      res.end('reached\n');
    });
    await new Promise<void>((resolve) => s.listen(0, '0.0.0.0', resolve));
    return s;
  };
  /** wget from the guest to its gateway (the host) at `p`. */
  const fromGuest = (p: number) => {
    const gateway = guest.ip_address!.replace(/\.\d+$/, '.1');
    return execWithStatus(`berth-${guest.uuid}`, ['timeout', '5', 'wget', '-q', '-O', '-', `http://${gateway}:${p}/`]);
  };

  before(async () => {
    other = await serve();
    blocked = await serve();
    // The agent listens beyond loopback, as it does on a compute host the driver reaches over the network.
    t = await startTestAgent({
      agent: { listen: '0.0.0.0:0', guest_firewall: true, guest_firewall_chain: CHAIN, guest_blocked_ports: [String(port(blocked))] },
    });
    const spec: InstanceSpec = {
      image_id: t.baseGlanceId,
      flavor: { vcpus: 1, memory_mb: 48, root_gb: 1, swap: 0, extra_specs: {} },
      name: 'fw',
      hostname: 'fw-guest',
      project_id: PROJECT,
      user_id: 'tester',
      metadata: {},
      user_data: null,
      key_data: null,
      fixed_ip: null,
    };
    guest = await t.client.createInstance(randomUUID(), spec);
  });

  after(async () => {
    await t?.close(PROJECT, []);
    await new GuestFirewall({ chain: CHAIN, sources: [], blockedPorts: [], allowMetadata: false }).remove();
    other?.close();
    blocked?.close();
  });

  it('a guest reaches an ordinary host port', async () => {
    const r = await fromGuest(port(other));
    assert.equal(r.exitCode, 0, r.output);
    assert.match(r.output, /reached/);
  });

  it("a guest cannot connect to the agent's own port, nor to a port named in guest_blocked_ports", async () => {
    const agentPort = Number(new URL(t.agent.url).port);
    for (const p of [agentPort, port(blocked)]) {
      const r = await fromGuest(p);
      assert.notEqual(r.exitCode, 0, `port ${p}: ${r.output}`);
      assert.doesNotMatch(r.output, /reached|Unauthorized|error/i);
    }
  });

  it('installing again changes nothing (one jump per hook)', async () => {
    const { execFileSync } = await import('node:child_process');
    const count = (): number =>
      execFileSync('iptables', ['-w', '-S', 'INPUT'], { encoding: 'utf8' })
        .split('\n')
        .filter((l) => l.endsWith(`-j ${CHAIN}`)).length;
    assert.equal(count(), 1);
    await new GuestFirewall({ chain: CHAIN, sources: ['172.30.0.0/16'], blockedPorts: [port(blocked)], allowMetadata: false }).install();
    assert.equal(count(), 1);
  });
});
