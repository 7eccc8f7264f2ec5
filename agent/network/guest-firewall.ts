import { execFile } from 'node:child_process';
import { isIPv4 } from 'node:net';
import type { Logger } from '../../common/log.js';

/**
 * Keeps guests off the host itself. A guest's packets to a host address (its bridge's gateway,
 * the host's own addresses) are the host's INPUT, which Docker does not filter: without this, a
 * tenant reaches the agent, the image service and its registry endpoint on whatever address they
 * listen, and a link-local metadata service at 169.254.169.254. One chain of the filter table
 * holds the rules; INPUT (and DOCKER-USER, for metadata traffic the host forwards) jump to it for
 * each guest source range.
 *
 * Installed at agent start, idempotently: the chain is written whole by one `iptables-restore
 * --noflush` (atomic: no moment without rules, whatever was there is replaced), then the jumps
 * are added where missing and jumps of this chain from other source ranges removed. It stays
 * when the agent stops: running guests stay filtered while the agent restarts. The agent writes it
 * again every few minutes, in case another tool flushed the host's rules.
 */

export const METADATA_ADDRESS = '169.254.169.254';
/** Chains on the filter table that jump to the guest chain: traffic to the host, and (metadata) through it. */
const HOOKS = ['INPUT', 'DOCKER-USER'] as const;
/** iptables' multiport takes at most 15 ports per rule. */
const MULTIPORT_MAX = 15;

export interface GuestFirewallSpec {
  /** The chain's name (`[agent] guest_firewall_chain`). */
  chain: string;
  /** CIDRs guests take their addresses from (the project subnet pool). */
  sources: string[];
  /** Host TCP ports guests may not open a connection to. */
  blockedPorts: number[];
  /** Ranges of them, STOP excluded (the serial consoles' [serial_console] port_range). */
  blockedRanges?: Array<{ start: number; stop: number }>;
  /** Whether guests may reach 169.254.169.254 (`[agent] guest_metadata_access`). */
  allowMetadata: boolean;
}

/** Runs a program with arguments (and standard input), resolving with its standard output. */
export type Runner = (file: string, args: string[], stdin?: string) => Promise<string>;

const run: Runner = (file, args, stdin) =>
  new Promise((resolve, reject) => {
    const child = execFile(file, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
    if (stdin !== undefined) child.stdin?.end(stdin);
  });

export function checkGuestFirewallSpec(spec: GuestFirewallSpec): void {
  if (!/^[A-Za-z0-9_-]{1,28}$/.test(spec.chain))
    throw new Error(`guest firewall chain name ${JSON.stringify(spec.chain)} must be 1 to 28 letters, digits, - or _`);
  for (const s of spec.sources) {
    const [ip, prefix] = s.split('/');
    if (!ip || !isIPv4(ip) || !/^\d{1,2}$/.test(prefix ?? '') || Number(prefix) > 32) throw new Error(`guest source ${JSON.stringify(s)} is not an IPv4 CIDR`);
  }
  for (const p of spec.blockedPorts) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`blocked host port ${p} is not a TCP port`);
  for (const r of spec.blockedRanges ?? []) {
    if (!Number.isInteger(r.start) || !Number.isInteger(r.stop) || r.start < 1 || r.stop > 65536 || r.start >= r.stop)
      throw new Error(`blocked host port range ${r.start}:${r.stop} is not START:STOP of TCP ports`);
  }
}

/** The chain, as iptables-restore input: declaring it with --noflush empties it, then the rules. */
export function guestChainRules(spec: GuestFirewallSpec): string {
  const c = spec.chain;
  const lines = ['*filter', `:${c} - [0:0]`];
  if (!spec.allowMetadata)
    lines.push(`-A ${c} -d ${METADATA_ADDRESS}/32 -p tcp -j REJECT --reject-with tcp-reset`, `-A ${c} -d ${METADATA_ADDRESS}/32 -j DROP`);
  const ports = [...new Set(spec.blockedPorts)].sort((a, b) => a - b);
  for (let i = 0; i < ports.length; i += MULTIPORT_MAX) {
    // Addressed to the host itself: a guest's connections to other machines' ports are not this chain's business.
    lines.push(
      `-A ${c} -p tcp -m addrtype --dst-type LOCAL -m multiport --dports ${ports.slice(i, i + MULTIPORT_MAX).join(',')} -j REJECT --reject-with tcp-reset`,
    );
  }
  for (const r of spec.blockedRanges ?? []) {
    lines.push(`-A ${c} -p tcp -m addrtype --dst-type LOCAL --dport ${r.start}:${r.stop - 1} -j REJECT --reject-with tcp-reset`);
  }
  lines.push('COMMIT', '');
  return lines.join('\n');
}

export class GuestFirewall {
  constructor(
    private readonly spec: GuestFirewallSpec,
    private readonly log?: Logger,
    private readonly exec: Runner = run,
  ) {
    checkGuestFirewallSpec(spec);
  }

  /** Writes the chain and its jumps; safe to repeat. Rejects when iptables refuses (the agent then does not start). */
  async install(): Promise<void> {
    const { chain, sources } = this.spec;
    await this.exec('iptables-restore', ['-w', '--noflush'], guestChainRules(this.spec));
    for (const hook of HOOKS) {
      const existing = await this.jumps(hook);
      if (existing === null) {
        this.log?.warn({ chain: hook }, "no such iptables chain (Docker creates DOCKER-USER); guests' forwarded metadata traffic is not filtered");
        continue;
      }
      for (const source of sources) {
        if (!existing.includes(source)) await this.exec('iptables', ['-w', '-I', hook, '1', '-s', source, '-j', chain]);
      }
      // A range no longer configured (the pool changed) stops jumping here.
      for (const stale of existing.filter((s) => !sources.includes(s))) await this.exec('iptables', ['-w', '-D', hook, '-s', stale, '-j', chain]);
    }
  }

  /** Removes the jumps and the chain (for tests, and an operator turning the firewall off). */
  async remove(): Promise<void> {
    const { chain } = this.spec;
    for (const hook of HOOKS) {
      for (const source of (await this.jumps(hook)) ?? []) await this.exec('iptables', ['-w', '-D', hook, '-s', source, '-j', chain]);
    }
    await this.exec('iptables', ['-w', '-F', chain]).catch(() => undefined);
    await this.exec('iptables', ['-w', '-X', chain]).catch(() => undefined);
  }

  /** Sources of `hook`'s jumps to the chain; null when `hook` does not exist. */
  private async jumps(hook: string): Promise<string[] | null> {
    let rules: string;
    try {
      rules = await this.exec('iptables', ['-w', '-S', hook]);
    } catch (err) {
      if (/no chain|does not exist|not found/i.test((err as Error).message)) return null;
      throw err;
    }
    const out: string[] = [];
    for (const line of rules.split('\n')) {
      const m = /^-A \S+ -s (\S+) -j (\S+)$/.exec(line.trim());
      if (m && m[2] === this.spec.chain) out.push(m[1]!);
    }
    return out;
  }
}
