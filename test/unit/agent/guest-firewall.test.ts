import assert from 'node:assert/strict';
import { guestFirewallSpec } from '../../../agent/main.js';
import { GuestFirewall, guestChainRules, type GuestFirewallSpec, type Runner } from '../../../agent/network/guest-firewall.js';
import { loadConfig } from '../../../conf/load.js';

/** iptables as far as the firewall uses it: chains of `-A CHAIN -s SRC -j TARGET` rules, and restore input kept. */
function fakeIptables(chains: Record<string, string[]> = { INPUT: [], 'DOCKER-USER': ['-j RETURN'] }) {
  const calls: string[] = [];
  const restored: string[] = [];
  const exec: Runner = async (file, args, stdin) => {
    calls.push([file, ...args].join(' '));
    if (file === 'iptables-restore') {
      restored.push(stdin ?? '');
      return '';
    }
    const [, op, chain, ...rest] = args;
    const rules = chains[chain!];
    if (op === '-F' || op === '-X') return '';
    if (!rules) throw new Error(`iptables: No chain/target/match by that name.`);
    if (op === '-S') return [`-N ${chain}`, ...rules.map((r) => `-A ${chain} ${r}`)].join('\n');
    if (op === '-I') {
      rules.splice(Number(rest[0]) - 1, 0, rest.slice(1).join(' '));
      return '';
    }
    if (op === '-D') {
      const i = rules.indexOf(rest.join(' '));
      if (i < 0) throw new Error('Bad rule');
      rules.splice(i, 1);
      return '';
    }
    throw new Error(`unexpected ${args.join(' ')}`);
  };
  return { exec, calls, restored, chains };
}

const spec: GuestFirewallSpec = { chain: 'BERTH-GUEST', sources: ['172.30.0.0/16'], blockedPorts: [9393, 9292, 5050, 9292], allowMetadata: false };

describe('agent guest firewall', () => {
  it("writes one chain refusing guests' connections to the host's Berth ports and all traffic to the metadata address", () => {
    assert.equal(
      guestChainRules(spec),
      [
        '*filter',
        ':BERTH-GUEST - [0:0]',
        '-A BERTH-GUEST -d 169.254.169.254/32 -p tcp -j REJECT --reject-with tcp-reset',
        '-A BERTH-GUEST -d 169.254.169.254/32 -j DROP',
        '-A BERTH-GUEST -p tcp -m addrtype --dst-type LOCAL -m multiport --dports 5050,9292,9393 -j REJECT --reject-with tcp-reset',
        'COMMIT',
        '',
      ].join('\n'),
    );
    assert.doesNotMatch(guestChainRules({ ...spec, allowMetadata: true }), /169\.254/);
    const many = guestChainRules({ ...spec, blockedPorts: Array.from({ length: 20 }, (_, i) => 1000 + i) });
    assert.equal(many.match(/multiport/g)?.length, 2, 'multiport takes 15 ports per rule');
  });

  it("refuses guests the serial consoles' port range (STOP excluded), and rejects a range that is none", () => {
    assert.match(
      guestChainRules({ ...spec, blockedRanges: [{ start: 10000, stop: 20000 }] }),
      /\n-A BERTH-GUEST -p tcp -m addrtype --dst-type LOCAL --dport 10000:19999 -j REJECT --reject-with tcp-reset\nCOMMIT\n/,
    );
    assert.throws(() => new GuestFirewall({ ...spec, blockedRanges: [{ start: 20000, stop: 20000 }] }), /not START:STOP/);
  });

  it('installs idempotently: the chain replaced whole each time, each jump added once, jumps from ranges no longer configured removed', async () => {
    const ipt = fakeIptables({ INPUT: ['-s 10.9.0.0/16 -j BERTH-GUEST', '-s 10.8.0.0/16 -j OTHER'], 'DOCKER-USER': ['-j RETURN'] });
    const fw = new GuestFirewall(spec, undefined, ipt.exec);
    await fw.install();
    await fw.install();
    assert.equal(ipt.restored.length, 2);
    assert.ok(ipt.calls.every((c) => !c.startsWith('iptables-restore') || c === 'iptables-restore -w --noflush'));
    assert.deepEqual(ipt.chains.INPUT, ['-s 172.30.0.0/16 -j BERTH-GUEST', '-s 10.8.0.0/16 -j OTHER']);
    assert.deepEqual(ipt.chains['DOCKER-USER'], ['-s 172.30.0.0/16 -j BERTH-GUEST', '-j RETURN']);
    await fw.remove();
    assert.deepEqual(ipt.chains.INPUT, ['-s 10.8.0.0/16 -j OTHER']);
    assert.deepEqual(ipt.chains['DOCKER-USER'], ['-j RETURN']);
  });

  it('installs without DOCKER-USER (no dockerd rules yet), and fails when iptables refuses', async () => {
    const ipt = fakeIptables({ INPUT: [] });
    await new GuestFirewall(spec, undefined, ipt.exec).install();
    assert.deepEqual(ipt.chains.INPUT, ['-s 172.30.0.0/16 -j BERTH-GUEST']);
    const refusing: Runner = async () => {
      throw new Error('iptables-restore: Permission denied (you must be root)');
    };
    await assert.rejects(new GuestFirewall(spec, undefined, refusing).install(), /Permission denied/);
  });

  it('refuses a chain name or port iptables would misread', () => {
    assert.throws(() => new GuestFirewall({ ...spec, chain: 'X -j ACCEPT' }), /chain name/);
    assert.throws(() => new GuestFirewall({ ...spec, blockedPorts: [Number('5672,22')] }), /not a TCP port/);
    assert.throws(() => new GuestFirewall({ ...spec, sources: ['0.0.0.0/0 -j ACCEPT'] }), /not an IPv4 CIDR/);
  });

  it("blocks the ports Berth's services listen on as configured, the agent's as it listens", () => {
    const config = loadConfig({
      env: {},
      overrides: {
        agent: { image_registry: '10.0.0.5:5050', guest_blocked_ports: ['5672'], project_subnet_pool: '10.77.0.0/16' },
        glance: { api_url: 'https://glance.example:9292' },
        image_store: { listen: '0.0.0.0:9300', registry_listen: '', noauth_beyond_loopback: true },
      },
    });
    const got = guestFirewallSpec(config, 'http://0.0.0.0:41234');
    assert.deepEqual(got, {
      chain: 'BERTH-GUEST',
      sources: ['10.77.0.0/16'],
      blockedPorts: [41234, 9292, 5050, 9300, 5672],
      allowMetadata: false,
      blockedRanges: [{ start: 10000, stop: 20000 }],
    });
    assert.deepEqual(guestFirewallSpec(config, 'unix:///run/berth/agent.sock').blockedPorts, [9292, 5050, 9300, 5672]);
  });
});
