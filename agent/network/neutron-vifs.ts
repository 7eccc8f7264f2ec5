import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { agentError } from '../errors.js';
import { HelperShell } from './veth.js';

/** A Neutron port bound to this host as a `bridge` VIF, as the compute side hands it over. */
export interface BridgeVif {
  portId: string;
  /** Host end of the pair, `tap` + port id (14 characters): the name the linuxbridge agent watches for. */
  tap: string;
  /** The network's bridge, `brq` + network id (14 characters); made here when the agent has not yet. */
  bridge: string;
  mac: string;
  mtu: number;
  /** IPv4 addresses with their prefix; empty: the guest asks Neutron's DHCP. */
  addresses: Array<{ address: string; prefix: number }>;
  gateway: string | null;
  routes: Array<{ destination: string; nexthop: string }>;
}

/**
 * A guest end `prepare` parked in the host's namespace, as found on the host: its tap, and the
 * agent (by its host's key, ownerKey) and instance its alias names; both null for an end without
 * Berth's alias (an older version's, or made by hand).
 */
export interface ParkedEnd {
  name: string;
  tap: string;
  owner: string | null;
  uuid: string | null;
}

/**
 * The mark of one agent's parked ends: 12 hex digits of the digest of its [DEFAULT] host and its
 * state directory. A restarted agent keeps both and finds its own ends again; another agent on the
 * kernel differs in one of them (two agents never share a state directory), even when both kept
 * the machine's name as their host.
 */
export function ownerKey(host: string | undefined, stateDir?: string): string {
  return createHash('sha256')
    .update(`${host ?? ''}\0${stateDir ?? ''}`)
    .digest('hex')
    .slice(0, 12);
}

const PARKED_ALIAS = 'berth-parked';
const PARKED_RE = /^vpk[0-9a-f-]{11}$/;
const ALIAS_RE = /^berth-parked ([0-9a-f]{12}) ([A-Za-z0-9_.-]{1,64})$/;

export interface VifAttachment {
  uuid: string;
  /** The container's network namespace file (the engine's SandboxKey); see VethAttachment. */
  netns: string;
  /** The guest's interface name: eth0, eth1, ... in the order of the instance's VIFs. */
  ifname: string;
  vif: BridgeVif;
}

const IP = '/usr/sbin/ip';
const NSENTER = '/usr/bin/nsenter';

/**
 * Plugs containers into Neutron networks the way os-vif's linux_bridge plugin plugs a VM: a veth
 * pair whose host end is the port's tap on the network's brq bridge and whose other end is the
 * guest's interface with the port's MAC, the network's MTU, and (when given) its addresses,
 * gateway and routes. The linuxbridge agent on this host sees the tap, applies the port's
 * security groups to it (iptables) and reports the port ACTIVE; for compute ports it leaves
 * adding the tap to the bridge to the compute node, as here.
 */
export class NeutronPlumber {
  private readonly shell = new HelperShell();
  private readonly owner: string;

  /** `host` and `stateDir`: the agent's [DEFAULT] host and state_path, whose key marks the ends it parks (parkedEnds). */
  constructor(host?: string, stateDir?: string) {
    this.owner = ownerKey(host, stateDir);
  }

  /**
   * The pair made before its guest exists (os-vif plugs before the guest runs): the tap on the
   * network's bridge and up, so Neutron's agent wires the port while the container is made; the
   * guest end waits in the host's namespace under `parkedName(tap)` with the port's MAC until
   * `attach` moves it in. The parked end's alias names this agent's host (by its key) and the
   * instance, so that one left by a create that never finished (the agent died) is found and
   * removed (parkedEnds; DockerPlugs' sweep) without touching another agent's on the same kernel.
   * Idempotent: a tap that exists already is left as it is.
   */
  async prepare(uuid: string, vif: BridgeVif): Promise<void> {
    check({ uuid, netns: '/proc/self/ns/net', ifname: 'eth0', vif });
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(uuid)) throw agentError('RUNTIME_ERROR', `invalid instance id ${JSON.stringify(uuid)}`);
    if (await this.attached(vif.tap)) return;
    const { tap, bridge, mac, mtu } = vif;
    const parked = parkedName(tap);
    await this.shell.run(
      `${ensureBridge(bridge)} && ` +
        `{ ${IP} link add ${tap} mtu ${mtu} type veth peer name ${parked} address ${mac} mtu ${mtu} || { [ -e /sys/class/net/${tap} ] && exit 0; }; } && ` +
        `{ { ${IP} link set ${parked} alias '${PARKED_ALIAS} ${this.owner} ${uuid}' && ${IP} link set ${tap} master ${bridge} up; } || { rc=$?; ${IP} link del ${tap}; exit $rc; }; }`,
    );
  }

  /** The guest ends parked in the host's namespace now, with their marks (an end gone meanwhile is left out). */
  async parkedEnds(): Promise<ParkedEnd[]> {
    const out: ParkedEnd[] = [];
    for (const name of (await readdir('/sys/class/net')).filter((n) => PARKED_RE.test(n))) {
      const alias = await readFile(`/sys/class/net/${name}/ifalias`, 'utf8').catch(() => null);
      if (alias === null) continue;
      const m = ALIAS_RE.exec(alias.trim());
      out.push({ name, tap: `tap${name.slice(3)}`, owner: m?.[1] ?? null, uuid: m?.[2] ?? null });
    }
    return out;
  }

  /** This agent's mark on the ends it parks. */
  get ownerKey(): string {
    return this.owner;
  }

  /**
   * Plugs the guest: the pair `prepare` made moved in (its guest end renamed and configured), or
   * a new pair. Idempotent: a tap whose guest end is in this guest is plugged already. A tap of
   * the port whose guest end is in another namespace is another container's of the same instance
   * on this engine (its node evacuated while the container kept running): the port belongs to
   * this plug now, as Neutron's binding moves with an evacuation, and that pair is replaced.
   */
  async attach(a: VifAttachment): Promise<void> {
    check(a);
    const parked = parkedName(a.vif.tap);
    if (await this.attached(parked)) return this.moveIn(a, parked);
    if (await this.attached(a.vif.tap)) {
      if (await this.peerIn(a.vif.tap, a.netns)) return;
      await this.detach(a.vif.tap);
    }
    const { tap, bridge, mac, mtu } = a.vif;
    const guest = guestCommands(a);
    await this.shell.run(
      `${ensureBridge(bridge)} && ` +
        // Another agent following the same engine may plug the same start: its tap is the plug.
        `{ ${IP} link add ${tap} mtu ${mtu} type veth peer name ${a.ifname} address ${mac} mtu ${mtu} netns ${a.netns} || { [ -e /sys/class/net/${tap} ] && exit 0; }; } && ` +
        `{ ${IP} link set ${tap} master ${bridge} up && printf '%s\\n' ${guest.map((l) => `'${l}'`).join(' ')} | ${NSENTER} --net=${a.netns} ${IP} -batch - ` +
        `|| { rc=$?; ${IP} link del ${tap}; exit $rc; }; }`,
    );
  }

  /** The parked guest end moved into the guest's namespace as `ifname`, then configured; on failure the pair is removed. */
  private async moveIn(a: VifAttachment, parked: string): Promise<void> {
    const guest = guestCommands(a);
    await this.shell.run(
      `{ ${IP} link set ${parked} netns ${a.netns} name ${a.ifname} && printf '%s\\n' ${guest.map((l) => `'${l}'`).join(' ')} | ${NSENTER} --net=${a.netns} ${IP} -batch - ; } ` +
        `|| { rc=$?; ${IP} link del ${a.vif.tap} 2>/dev/null; exit $rc; }`,
    );
  }

  /** Removes the pair (its guest end goes with it, parked or plugged); a tap already gone is fine. */
  async detach(tap: string): Promise<void> {
    if (!NAME_RE.test(tap)) throw agentError('RUNTIME_ERROR', `invalid tap name ${JSON.stringify(tap)}`);
    await this.shell.run(`${IP} link del ${tap} 2>/dev/null || [ ! -e /sys/class/net/${tap} ]`);
  }

  /**
   * True when the pair of `tap` is this guest's: its guest end parked by this agent (made for it,
   * not yet moved in) or in the namespace `netns`. A tap of the same port plugged into another container (the
   * instance's container of another node on this engine) is not.
   */
  async owns(tap: string, netns: string): Promise<boolean> {
    if (!/^tap[0-9a-f-]{11}$/.test(tap) || !NETNS_RE.test(netns) || netns.split('/').includes('..')) return false;
    const parked = (await this.parkedEnds()).find((e) => e.tap === tap);
    if (parked) return parked.owner === this.owner || parked.owner === null;
    return (await this.attached(tap)) && this.peerIn(tap, netns);
  }

  /** Whether the other end of the veth `tap` is an interface of the namespace `netns` (its `@if<index>` names the tap's index). */
  private peerIn(tap: string, netns: string): Promise<boolean> {
    return this.shell.run(`idx=$(cat /sys/class/net/${tap}/ifindex) && ${NSENTER} --net=${netns} ${IP} -o link show | grep -q "@if$idx: "`).then(
      () => true,
      () => false,
    );
  }

  /** True when the tap exists (it vanishes with the container's namespace). */
  async attached(tap: string): Promise<boolean> {
    return stat(`/sys/class/net/${tap}`).then(
      () => true,
      () => false,
    );
  }

  close(): void {
    this.shell.close();
  }
}

/** The guest end of a pair made before its guest, while it waits in the host's namespace: `vpk` + the port id's first 11 characters. */
export function parkedName(tap: string): string {
  return `vpk${tap.slice(3)}`;
}

/** The guest's side of a plug: addresses, the link up, the routes (run in its namespace). */
function guestCommands(a: VifAttachment): string[] {
  const guest: string[] = [...a.vif.addresses.map((x) => `addr add ${x.address}/${x.prefix} dev ${a.ifname}`), `link set ${a.ifname} up`];
  // eth0's routes first: ethN's carry metric 100×N, so a second default route (an attached
  // interface's) is a fallback and not a clash with eth0's.
  const n = Number(a.ifname.slice(3));
  const metric = n ? ` metric ${n * 100}` : '';
  if (a.vif.gateway && a.vif.addresses.length) guest.push(`route add default via ${a.vif.gateway} dev ${a.ifname}${metric}`);
  for (const r of a.vif.routes) if (a.vif.addresses.length) guest.push(`route add ${r.destination} via ${r.nexthop} dev ${a.ifname}${metric}`);
  return guest;
}

/**
 * A Neutron network's brq bridge may be made concurrently by the agent: "exists" from either
 * side is fine. A bridge a caller names (standalone mode) must exist already: it is never made.
 */
function ensureBridge(bridge: string): string {
  return NEUTRON_BRIDGE_RE.test(bridge)
    ? `{ [ -e /sys/class/net/${bridge} ] || ${IP} link add ${bridge} type bridge 2>/dev/null || [ -e /sys/class/net/${bridge} ]; } && ${IP} link set ${bridge} up`
    : `{ [ -e /sys/class/net/${bridge}/bridge ] || { echo "bridge ${bridge} does not exist on this host" >&2; exit 1; }; }`;
}

const NAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;
/** The linuxbridge agent's bridge of a Neutron network: `brq` + network id. */
const NEUTRON_BRIDGE_RE = /^brq[0-9a-f-]{11}$/;
/**
 * Any other bridge a VIF may name: a Linux interface name, not one of the engine's own (docker0,
 * br-<network id>: Berth's project networks are those, and a guest there would be on another
 * project's network).
 */
export function callerBridgeAllowed(name: string): boolean {
  return /^[A-Za-z][A-Za-z0-9_.-]{0,14}$/.test(name) && name !== 'docker0' && !/^br-[0-9a-f]{12}$/.test(name) && !name.startsWith('veth');
}
const IPV4_RE = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;
const CIDR_RE = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/([0-9]|[12]\d|3[0-2])$/;
const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
const NETNS_RE = /^(\/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,254}){1,16}$/;

/** Every token that goes into a command line, checked: nothing from outside is trusted. */
function check(a: VifAttachment): void {
  const bad = (what: string, value: unknown): never => {
    throw agentError('RUNTIME_ERROR', `cannot plug instance ${a.uuid} into port ${a.vif.portId}: invalid ${what} ${JSON.stringify(value)}`, { uuid: a.uuid });
  };
  const v = a.vif;
  if (typeof a.netns !== 'string' || !NETNS_RE.test(a.netns) || a.netns.split('/').includes('..')) bad('network namespace', a.netns);
  if (!/^eth\d{1,2}$/.test(a.ifname)) bad('interface name', a.ifname);
  if (!/^tap[0-9a-f-]{11}$/.test(v.tap)) bad('tap name', v.tap);
  if (!NEUTRON_BRIDGE_RE.test(v.bridge) && !callerBridgeAllowed(v.bridge)) bad('bridge name', v.bridge);
  if (!MAC_RE.test(v.mac)) bad('MAC address', v.mac);
  if (!Number.isInteger(v.mtu) || v.mtu < 576 || v.mtu > 65535) bad('MTU', v.mtu);
  for (const x of v.addresses) if (!IPV4_RE.test(x.address) || !Number.isInteger(x.prefix) || x.prefix < 1 || x.prefix > 32) bad('address', x);
  if (v.gateway !== null && !IPV4_RE.test(v.gateway)) bad('gateway', v.gateway);
  for (const r of v.routes) if (!CIDR_RE.test(r.destination) || !IPV4_RE.test(r.nexthop)) bad('route', r);
}
