import { randomBytes, randomUUID } from 'node:crypto';
import {
  neutronError,
  resolveSecurityGroups,
  type NeutronClient,
  type NeutronFloatingIp,
  type NeutronNetwork,
  type NeutronPort,
  type NeutronSubnet,
  type PortBinding,
  type PortCreate,
  type PortFilter,
} from '../../driver/neutron/client.js';

const toInt = (ip: string): number => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
const toIp = (n: number): string => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');

function inCidr(ip: string, cidr: string): boolean {
  const [base, len] = cidr.split('/');
  const mask = Number(len) === 0 ? 0 : (~0 << (32 - Number(len))) >>> 0;
  return /^\d+\.\d+\.\d+\.\d+$/.test(ip) && (toInt(ip) & mask) >>> 0 === (toInt(base!) & mask) >>> 0;
}

export interface FakeNetworkSpec {
  name?: string;
  cidr: string;
  mtu?: number;
  gateway_ip?: string | null;
  dns_nameservers?: string[];
  host_routes?: Array<{ destination: string; nexthop: string }>;
  enable_dhcp?: boolean;
}

/**
 * Neutron's ports, networks, subnets and security groups, in memory, behaving as HttpNeutron
 * against the real service with ML2 and the linuxbridge mechanism (test/conformance/neutron.ts):
 * a port bound to a host with a live agent (`agentHosts`) gets vif_type `bridge`, to any other
 * host `binding_failed`; addresses come from the subnet in order, the gateway skipped; a port
 * starts DOWN (`setStatus` plays the agent that wires it). Floating IPs: `associateFloatingIp`
 * plays a tenant's `floating ip set --port`; deleting a port disassociates its floating IPs.
 */
export class FakeNeutron implements NeutronClient {
  readonly networks = new Map<string, NeutronNetwork>();
  readonly subnets = new Map<string, NeutronSubnet>();
  readonly ports = new Map<string, NeutronPort>();
  readonly securityGroups = new Map<string, Array<{ id: string; name: string }>>();
  /** Floating IPs by id; `port_id` null when not associated. */
  readonly floatingIps = new Map<string, { id: string; floating_ip_address: string; port_id: string | null; fixed_ip_address: string | null }>();
  /** Hosts whose linuxbridge agent is alive. */
  readonly agentHosts = new Set<string>();
  /** Every call, for tests that check what the node asked. */
  readonly calls: string[] = [];

  addNetwork(spec: FakeNetworkSpec): { network: NeutronNetwork; subnet: NeutronSubnet } {
    const network: NeutronNetwork = {
      id: randomUUID(),
      name: spec.name ?? 'net',
      project_id: 'admin',
      mtu: spec.mtu ?? 1450,
      shared: true,
      status: 'ACTIVE',
      subnets: [],
    };
    const first = toIp(toInt(spec.cidr.split('/')[0]!) + 1);
    const subnet: NeutronSubnet = {
      id: randomUUID(),
      network_id: network.id,
      cidr: spec.cidr,
      ip_version: 4,
      gateway_ip: spec.gateway_ip === undefined ? first : spec.gateway_ip,
      enable_dhcp: spec.enable_dhcp ?? true,
      dns_nameservers: [...(spec.dns_nameservers ?? [])],
      host_routes: [...(spec.host_routes ?? [])],
    };
    network.subnets.push(subnet.id);
    this.networks.set(network.id, network);
    this.subnets.set(subnet.id, subnet);
    return { network: structuredClone(network), subnet: structuredClone(subnet) };
  }

  /** The L2 agent's report: the plugged port is wired (ACTIVE) or gone (DOWN). */
  setStatus(portId: string, status: 'ACTIVE' | 'DOWN'): void {
    const p = this.ports.get(portId);
    if (p) p.status = status;
  }

  /** A floating IP with `address`, associated with the port's first fixed IP (or `fixed`); its id. */
  associateFloatingIp(portId: string, address: string, fixed?: string): string {
    const p = this.port(portId);
    const id = randomUUID();
    this.floatingIps.set(id, { id, floating_ip_address: address, port_id: p.id, fixed_ip_address: fixed ?? p.fixed_ips[0]!.ip_address });
    return id;
  }

  /** `floating ip unset --port`: the floating IP stays allocated, forwarding nowhere. */
  disassociateFloatingIp(id: string): void {
    const f = this.floatingIps.get(id);
    if (f) Object.assign(f, { port_id: null, fixed_ip_address: null });
  }

  private port(id: string): NeutronPort {
    const p = this.ports.get(id);
    if (!p)
      throw neutronError('NEUTRON_NOT_FOUND', `neutron GET ports/${id}: Port ${id} could not be found.`, { http_status: 404, neutron_type: 'PortNotFound' });
    return p;
  }

  private defaultGroup(projectId: string): string {
    const groups = this.securityGroups.get(projectId) ?? [];
    let g = groups.find((x) => x.name === 'default');
    if (!g) {
      g = { id: randomUUID(), name: 'default' };
      this.securityGroups.set(projectId, [...groups, g]);
    }
    return g.id;
  }

  private bind(p: NeutronPort, b: PortBinding): void {
    p.device_id = b.device_id;
    p.device_owner = b.device_owner;
    p['binding:host_id'] = b.host;
    const bound = b.host !== '' && this.agentHosts.has(b.host);
    p['binding:vif_type'] = b.host === '' ? 'unbound' : bound ? 'bridge' : 'binding_failed';
    p['binding:vif_details'] = bound ? { connectivity: 'l2', port_filter: true } : {};
  }

  private used(networkId: string): Set<string> {
    return new Set([...this.ports.values()].filter((p) => p.network_id === networkId).flatMap((p) => p.fixed_ips.map((f) => f.ip_address)));
  }

  async listPorts(filter: PortFilter): Promise<NeutronPort[]> {
    this.calls.push('listPorts');
    return [...this.ports.values()]
      .filter(
        (p) =>
          (filter.device_id === undefined || p.device_id === filter.device_id) &&
          (filter.network_id === undefined || p.network_id === filter.network_id) &&
          (filter.device_owner === undefined || p.device_owner === filter.device_owner),
      )
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((p) => structuredClone(p));
  }

  async showPort(id: string): Promise<NeutronPort> {
    this.calls.push('showPort');
    return structuredClone(this.port(id));
  }

  async createPort(req: PortCreate): Promise<NeutronPort> {
    this.calls.push('createPort');
    const net = this.networks.get(req.network_id);
    if (!net)
      throw neutronError('NEUTRON_NOT_FOUND', `neutron POST ports: Network ${req.network_id} could not be found.`, {
        http_status: 404,
        neutron_type: 'NetworkNotFound',
      });
    const subnets = net.subnets.map((s) => this.subnets.get(s)!);
    const used = this.used(net.id);
    const fixed: Array<{ subnet_id: string; ip_address: string }> = [];
    for (const want of req.fixed_ips ?? []) {
      const subnet = subnets.find((s) => (want.subnet_id ? s.id === want.subnet_id : inCidr(want.ip_address, s.cidr)));
      if (!subnet || !inCidr(want.ip_address, subnet.cidr)) {
        // Neutron names the subnet when the caller did, else the network.
        throw neutronError('NEUTRON_BAD_REQUEST', `neutron POST ports: IP address ${want.ip_address} is not a valid IP for the specified subnet.`, {
          http_status: 400,
          neutron_type: want.subnet_id ? 'InvalidIpForSubnet' : 'InvalidIpForNetwork',
        });
      }
      if (used.has(want.ip_address)) {
        throw neutronError('NEUTRON_CONFLICT', `neutron POST ports: IP address ${want.ip_address} already allocated in subnet ${subnet.id}`, {
          http_status: 409,
          neutron_type: 'IpAddressAlreadyAllocated',
        });
      }
      fixed.push({ subnet_id: subnet.id, ip_address: want.ip_address });
    }
    if (!req.fixed_ips) {
      for (const s of subnets) {
        const [base, len] = s.cidr.split('/');
        const size = 2 ** (32 - Number(len));
        let n = toInt(base!) + 2;
        while (n < toInt(base!) + size - 1 && (used.has(toIp(n)) || toIp(n) === s.gateway_ip)) n++;
        if (n >= toInt(base!) + size - 1)
          throw neutronError('NEUTRON_CONFLICT', `neutron POST ports: No more IP addresses available on network ${net.id}.`, {
            http_status: 409,
            neutron_type: 'IpAddressGenerationFailure',
          });
        fixed.push({ subnet_id: s.id, ip_address: toIp(n) });
      }
    }
    const mac = `fa:16:3e:${randomBytes(3).toString('hex').match(/../g)!.join(':')}`;
    const port: NeutronPort = {
      id: randomUUID(),
      name: req.name ?? '',
      network_id: net.id,
      project_id: req.project_id,
      mac_address: mac,
      fixed_ips: fixed,
      device_id: '',
      device_owner: '',
      status: 'DOWN',
      security_groups: [...(req.security_groups ?? [this.defaultGroup(req.project_id)])].sort(),
      port_security_enabled: true,
      'binding:host_id': '',
      'binding:vif_type': 'unbound',
      'binding:vif_details': {},
      'binding:vnic_type': 'normal',
    };
    this.bind(port, req);
    this.ports.set(port.id, port);
    return structuredClone(port);
  }

  async bindPort(id: string, b: PortBinding): Promise<NeutronPort> {
    this.calls.push('bindPort');
    const p = this.port(id);
    this.bind(p, b);
    return structuredClone(p);
  }

  async unbindPort(id: string): Promise<NeutronPort> {
    this.calls.push('unbindPort');
    const p = this.port(id);
    this.bind(p, { device_id: '', device_owner: '', host: '' });
    p.status = 'DOWN';
    return structuredClone(p);
  }

  async deletePort(id: string): Promise<void> {
    this.calls.push('deletePort');
    this.ports.delete(id);
    for (const f of this.floatingIps.values()) if (f.port_id === id) this.disassociateFloatingIp(f.id);
  }

  async showNetwork(id: string): Promise<NeutronNetwork> {
    this.calls.push('showNetwork');
    const n = this.networks.get(id);
    if (!n)
      throw neutronError('NEUTRON_NOT_FOUND', `neutron GET networks/${id}: Network ${id} could not be found.`, {
        http_status: 404,
        neutron_type: 'NetworkNotFound',
      });
    return structuredClone(n);
  }

  async showSubnet(id: string): Promise<NeutronSubnet> {
    this.calls.push('showSubnet');
    const s = this.subnets.get(id);
    if (!s)
      throw neutronError('NEUTRON_NOT_FOUND', `neutron GET subnets/${id}: Subnet ${id} could not be found.`, {
        http_status: 404,
        neutron_type: 'SubnetNotFound',
      });
    return structuredClone(s);
  }

  async securityGroupIds(projectId: string, namesOrIds: string[]): Promise<string[]> {
    this.calls.push('securityGroupIds');
    // Neutron makes a project's default group when the project's groups are first listed.
    this.defaultGroup(projectId);
    return resolveSecurityGroups(projectId, namesOrIds, this.securityGroups.get(projectId) ?? []);
  }

  async listFloatingIps(portIds: string[]): Promise<NeutronFloatingIp[]> {
    if (portIds.length === 0) return [];
    this.calls.push('listFloatingIps');
    const wanted = new Set(portIds);
    return [...this.floatingIps.values()]
      .filter((f): f is NeutronFloatingIp => f.port_id !== null && f.fixed_ip_address !== null && wanted.has(f.port_id))
      .map((f) => ({ ...f }))
      .sort((a, b) => a.id.localeCompare(b.id));
  }
}
