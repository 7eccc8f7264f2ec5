import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { agentError } from '../errors.js';

/** What one container gets on its project's bridge. */
export interface VethAttachment {
  uuid: string;
  /**
   * The container's network namespace as the engine keeps it mounted (`NetworkSettings.SandboxKey`,
   * /var/run/docker/netns/<sandbox>). Addressed by this path, never by the pid of the container's
   * first process: that pid can exit and be reused by another process (another tenant's) between
   * the engine's answer and the plug, and its namespace would get the pair.
   */
  netns: string;
  /** The Linux bridge of the project network. */
  bridge: string;
  ipv4: string;
  prefix: number;
  gateway: string;
  macAddress: string;
  /**
   * What names the host end (hostLinkName), when not the uuid: a second container of the
   * instance on this kernel (another compute host's, sharing the engine) has a link of its own.
   */
  linkKey?: string;
}

/** Traffic as the guest sees it (the host end counts the other way round). */
export interface VethCounters {
  rx_bytes: number;
  tx_bytes: number;
  rx_packets: number;
  tx_packets: number;
}

/**
 * Host end of an instance's veth pair: `vb` + 12 hex digits of its uuid's digest, within the
 * kernel's 15-character limit and the same on every attach, so a repeated attach finds it.
 */
export const hostLinkName = (uuid: string): string => `vb${createHash('sha256').update(uuid).digest('hex').slice(0, 12)}`;

const IP = '/usr/sbin/ip';
const NSENTER = '/usr/bin/nsenter';

/**
 * Plugs a running container into its project's bridge with a veth pair: the host end joins the
 * bridge, the other end becomes the guest's eth0 with its address, MAC and default route. The
 * bridge itself, its NAT and the isolation between projects are the engine network's, so a
 * plugged container is filtered exactly like one the engine attached.
 *
 * The engine attaches a container on a user-defined network with its embedded DNS resolver,
 * which it sets up with a re-executed daemon and iptables in the container's namespace: 50–95 ms
 * per container and serialized on the xtables lock when many start together. Plugging it here
 * takes two short `ip` runs, made by a small helper shell (forking this process itself would
 * copy its page tables: tens of milliseconds of blocked event loop each time). The price: eth0
 * appears a few milliseconds after the guest's first process started, not before it (see
 * `[docker] network_attach`).
 */
export class VethPlumber {
  private readonly shell = new HelperShell();

  /**
   * Gives the container its eth0. Idempotent: when the host end exists already, the guest is
   * checked, and re-plugged only when its eth0 is not the expected one (an end left over from a
   * namespace the kernel has not finished tearing down).
   */
  async attach(a: VethAttachment): Promise<void> {
    checkAttachment(a);
    const host = hostLinkName(a.linkKey ?? a.uuid);
    try {
      await this.plug(a, host);
    } catch (err) {
      if (!/exists/i.test(String((err as Error).message))) throw err;
      if (await this.guestHas(a)) return;
      await this.shell.run(`${IP} link del ${host}`).catch(() => undefined);
      await this.plug(a, host);
    }
  }

  /** True when the host end of the container's pair exists (it vanishes with the namespace). `key`: the uuid or the attachment's linkKey. */
  async attached(key: string): Promise<boolean> {
    return stat(`/sys/class/net/${hostLinkName(key)}`).then(
      () => true,
      () => false,
    );
  }

  /** The guest's traffic counters, read from the host end; null when it is not plugged. */
  async counters(key: string): Promise<VethCounters | null> {
    const dir = `/sys/class/net/${hostLinkName(key)}/statistics`;
    const read = async (name: string): Promise<number> => Number((await readFile(`${dir}/${name}`, 'utf8')).trim());
    try {
      const [rxB, txB, rxP, txP] = await Promise.all(['rx_bytes', 'tx_bytes', 'rx_packets', 'tx_packets'].map(read));
      // What the host end receives, the guest sent.
      return { rx_bytes: txB!, tx_bytes: rxB!, rx_packets: txP!, tx_packets: rxP! };
    } catch {
      return null;
    }
  }

  /** Stops the helper shell; a later attach starts a new one. */
  close(): void {
    this.shell.close();
  }

  private async plug(a: VethAttachment, host: string): Promise<void> {
    // The guest end is made inside the container's namespace, with its MAC, in the same request.
    // A pair made here is removed again when any later step fails; an existing one is left alone.
    const guestSide = batch([`addr add ${a.ipv4}/${a.prefix} dev eth0`, 'link set eth0 up', `route add default via ${a.gateway} dev eth0`]);
    await this.shell.run(
      `${IP} link add ${host} type veth peer name eth0 address ${a.macAddress} netns ${a.netns} && ` +
        `{ ${IP} link set ${host} master ${a.bridge} up && ${guestSide} | ${NSENTER} --net=${a.netns} ${IP} -batch - ` +
        `|| { rc=$?; ${IP} link del ${host}; exit $rc; }; }`,
    );
  }

  private async guestHas(a: VethAttachment): Promise<boolean> {
    return this.shell.run(`${NSENTER} --net=${a.netns} ${IP} -o -4 addr show dev eth0 | grep -qF ' ${a.ipv4}/${a.prefix} '`).then(
      () => true,
      () => false,
    );
  }
}

/** `printf` of ip batch lines; every token was checked by checkAttachment, so none needs quoting. */
function batch(lines: string[]): string {
  return `printf '%s\\n' ${lines.map((l) => `'${l}'`).join(' ')}`;
}

const NAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
/** An absolute path of plain segments (`ip` takes a name with a slash as a namespace file). */
const NETNS_RE = /^(\/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,254}){1,16}$/;

/** Everything that goes into a command line, checked: nothing read from labels is trusted. */
function checkAttachment(a: VethAttachment): void {
  const bad = (what: string, value: unknown): never => {
    throw agentError('RUNTIME_ERROR', `cannot plug instance ${a.uuid} into its network: invalid ${what} ${JSON.stringify(value)}`, { uuid: a.uuid });
  };
  if (typeof a.netns !== 'string' || !NETNS_RE.test(a.netns) || a.netns.split('/').includes('..')) bad('network namespace', a.netns);
  if (!NAME_RE.test(a.bridge)) bad('bridge name', a.bridge);
  if (!IPV4_RE.test(a.ipv4)) bad('address', a.ipv4);
  if (!IPV4_RE.test(a.gateway)) bad('gateway', a.gateway);
  if (!Number.isInteger(a.prefix) || a.prefix < 1 || a.prefix > 30) bad('prefix', a.prefix);
  if (!MAC_RE.test(a.macAddress)) bad('MAC address', a.macAddress);
}

/**
 * One long-lived /bin/sh that runs command lines for the agent, one at a time: it reads an id
 * line and a command line, and answers `<id> <exit status> <stderr on one line>`. Forking from
 * this small shell costs next to nothing; forking the agent costs a copy of its page tables.
 */
export class HelperShell {
  private child: ChildProcessWithoutNullStreams | null = null;
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void; command: string }>();
  private nextId = 1;
  private buffer = '';

  run(command: string): Promise<void> {
    const child = this.child ?? this.start();
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, command });
      child.stdin.write(`${id}\n${command}\n`);
    });
  }

  close(): void {
    this.child?.stdin.end();
    this.child = null;
  }

  private start(): ChildProcessWithoutNullStreams {
    const loop =
      'while IFS= read -r id && IFS= read -r cmd; do ' +
      'err=$( (eval "$cmd") 2>&1 >/dev/null ); rc=$?; ' +
      'printf \'%s %s %s\\n\' "$id" "$rc" "$(printf \'%s\' "$err" | tr \'\\n\' \' \' | cut -c1-400)"; done';
    const child = spawn('/bin/sh', ['-c', loop], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout.setEncoding('utf8').on('data', (d: string) => this.onData(d));
    child.stderr.resume();
    child.stdin.on('error', () => undefined);
    const fail = (why: string): void => {
      if (this.child === child) this.child = null;
      for (const [id, p] of this.pending) {
        this.pending.delete(id);
        p.reject(agentError('RUNTIME_ERROR', `could not run network commands: ${why}`));
      }
    };
    child.on('error', (e) => fail(e.message));
    child.on('close', () => fail('the helper shell exited'));
    child.unref();
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    (child.stdout as unknown as { unref?: () => void }).unref?.();
    return child;
  }

  private onData(d: string): void {
    this.buffer += d;
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + 1);
      const m = /^(\d+) (\d+) ?(.*)$/.exec(line);
      const p = m ? this.pending.get(Number(m[1])) : undefined;
      if (!m || !p) continue;
      this.pending.delete(Number(m[1]));
      if (m[2] === '0') p.resolve();
      else p.reject(agentError('RUNTIME_ERROR', `network command failed (exit ${m[2]}): ${m[3]!.trim()}`));
    }
  }
}
