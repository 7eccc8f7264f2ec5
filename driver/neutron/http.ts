import type { Agent } from 'node:http';
import { BerthError } from '../../common/errors.js';
import { parseEndpoint, readBody, requestRaw } from '../../common/http-client.js';
import { withSessionToken, type EndpointInterface, type KeystoneSession } from '../../common/keystone/index.js';
import {
  codeForStatus,
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
} from './client.js';

/** Statuses a request hands back to be mapped to a NEUTRON_* code instead of a generic error. */
const MAPPED = [400, 401, 403, 404, 409, 500, 502, 503, 504];

/**
 * Neutron's v2.0 API over HTTP with a Keystone token from the node's service session (a user
 * with the admin role, as nova's `[neutron]` user: binding a port to a host is admin-only); the
 * endpoint is the catalog's `network` service unless given. A 401 renews the token once.
 */
export class HttpNeutron implements NeutronClient {
  constructor(
    private readonly session: KeystoneSession,
    private readonly iface: EndpointInterface = 'public',
    private readonly endpointOverride = '',
    /** The connection pool instead of the shared one (tests hand in an in-memory one). */
    private readonly agent?: Agent,
  ) {}

  private async req<T>(method: string, path: string, body?: unknown, absentOk = false): Promise<T | null> {
    const ep = parseEndpoint(this.endpointOverride || (await this.session.endpoint('network', this.iface)), this.agent);
    const { status, parsed } = await withSessionToken(this.session, async (token) => {
      const res = await requestRaw(
        ep,
        {
          method,
          path: `v2.0/${path}`,
          ...(body === undefined ? {} : { body }),
          headers: { 'x-auth-token': token, accept: 'application/json' },
        },
        'neutron',
      );
      const buf = await readBody(res.body, 16 << 20);
      let json: unknown = undefined;
      try {
        json = buf.length ? JSON.parse(buf.toString('utf8')) : undefined;
      } catch {
        if (res.status < 300) throw neutronError('NEUTRON_ERROR', `neutron sent a body that is not JSON for ${method} ${path}`);
      }
      // withSessionToken renews the token and retries once on a 401 answer it sees as a status.
      return { status: res.status, parsed: json };
    });
    if (status < 300) return parsed as T;
    if (status === 404 && absentOk) return null;
    if (status === 401) throw new BerthError('AUTH_FAILED', `neutron refused the service token for ${method} ${path}`, { status: 502 });
    if (!MAPPED.includes(status) && status < 500) throw neutronError('NEUTRON_ERROR', `neutron ${method} ${path}: HTTP ${status}`);
    const err = (parsed as { NeutronError?: { type?: string; message?: string } } | undefined)?.NeutronError;
    throw neutronError(codeForStatus(status), `neutron ${method} ${path}: ${err?.message ?? `HTTP ${status}`}`, {
      http_status: status,
      ...(err?.type ? { neutron_type: err.type } : {}),
    });
  }

  private async must<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await this.req<T>(method, path, body)) as T;
  }

  async listPorts(filter: PortFilter): Promise<NeutronPort[]> {
    const q = new URLSearchParams();
    if (filter.device_id !== undefined) q.set('device_id', filter.device_id);
    if (filter.network_id !== undefined) q.set('network_id', filter.network_id);
    if (filter.device_owner !== undefined) q.set('device_owner', filter.device_owner);
    const { ports } = await this.must<{ ports: NeutronPort[] }>('GET', `ports?${q.toString()}`);
    return ports.map(normalPort).sort((a, b) => a.id.localeCompare(b.id));
  }

  async showPort(id: string): Promise<NeutronPort> {
    return normalPort((await this.must<{ port: NeutronPort }>('GET', `ports/${encodeURIComponent(id)}`)).port);
  }

  async createPort(req: PortCreate): Promise<NeutronPort> {
    const port: Record<string, unknown> = {
      network_id: req.network_id,
      project_id: req.project_id,
      device_id: req.device_id,
      device_owner: req.device_owner,
      'binding:host_id': req.host,
      admin_state_up: true,
    };
    if (req.name !== undefined) port.name = req.name;
    if (req.fixed_ips) port.fixed_ips = req.fixed_ips;
    if (req.security_groups) port.security_groups = req.security_groups;
    return normalPort((await this.must<{ port: NeutronPort }>('POST', 'ports', { port })).port);
  }

  async bindPort(id: string, b: PortBinding): Promise<NeutronPort> {
    const port = { device_id: b.device_id, device_owner: b.device_owner, 'binding:host_id': b.host };
    return normalPort((await this.must<{ port: NeutronPort }>('PUT', `ports/${encodeURIComponent(id)}`, { port })).port);
  }

  async unbindPort(id: string): Promise<NeutronPort> {
    const port = { device_id: '', device_owner: '', 'binding:host_id': '' };
    return normalPort((await this.must<{ port: NeutronPort }>('PUT', `ports/${encodeURIComponent(id)}`, { port })).port);
  }

  async deletePort(id: string): Promise<void> {
    await this.req('DELETE', `ports/${encodeURIComponent(id)}`, undefined, true);
  }

  async showNetwork(id: string): Promise<NeutronNetwork> {
    const { network: n } = await this.must<{ network: NeutronNetwork }>('GET', `networks/${encodeURIComponent(id)}`);
    return { id: n.id, name: n.name, project_id: n.project_id, mtu: n.mtu, shared: n.shared, status: n.status, subnets: [...n.subnets] };
  }

  async showSubnet(id: string): Promise<NeutronSubnet> {
    const { subnet: s } = await this.must<{ subnet: NeutronSubnet }>('GET', `subnets/${encodeURIComponent(id)}`);
    return {
      id: s.id,
      network_id: s.network_id,
      cidr: s.cidr,
      ip_version: s.ip_version,
      gateway_ip: s.gateway_ip,
      enable_dhcp: s.enable_dhcp,
      dns_nameservers: [...s.dns_nameservers],
      host_routes: s.host_routes.map((r) => ({ destination: r.destination, nexthop: r.nexthop })),
    };
  }

  async securityGroupIds(projectId: string, namesOrIds: string[]): Promise<string[]> {
    if (namesOrIds.length === 0) return [];
    // One list of the project's groups, names and ids only (as nova asks: no rules to render).
    const q = new URLSearchParams({ project_id: projectId });
    q.append('fields', 'id');
    q.append('fields', 'name');
    const { security_groups: groups } = await this.must<{ security_groups: Array<{ id: string; name: string }> }>('GET', `security-groups?${q.toString()}`);
    return resolveSecurityGroups(projectId, namesOrIds, groups);
  }

  async listFloatingIps(portIds: string[]): Promise<NeutronFloatingIp[]> {
    if (portIds.length === 0) return [];
    const q = new URLSearchParams();
    for (const id of new Set(portIds)) q.append('port_id', id);
    for (const f of ['id', 'floating_ip_address', 'port_id', 'fixed_ip_address']) q.append('fields', f);
    // No L3 API (no router service plugin): Neutron answers 404, and no port has a floating IP.
    const found = await this.req<{ floatingips: NeutronFloatingIp[] }>('GET', `floatingips?${q.toString()}`, undefined, true);
    return (found?.floatingips ?? [])
      .filter((f) => f.port_id && f.fixed_ip_address)
      .map((f) => ({ id: f.id, floating_ip_address: f.floating_ip_address, port_id: f.port_id, fixed_ip_address: f.fixed_ip_address }))
      .sort((a, b) => a.id.localeCompare(b.id));
  }
}

/** The fields of NeutronPort only, with Neutron's optional ones filled in. */
function normalPort(p: NeutronPort): NeutronPort {
  return {
    id: p.id,
    name: p.name,
    network_id: p.network_id,
    project_id: p.project_id,
    mac_address: p.mac_address,
    fixed_ips: p.fixed_ips.map((f) => ({ subnet_id: f.subnet_id, ip_address: f.ip_address })),
    device_id: p.device_id,
    device_owner: p.device_owner,
    status: p.status,
    security_groups: [...(p.security_groups ?? [])].sort(),
    port_security_enabled: p.port_security_enabled ?? true,
    'binding:host_id': p['binding:host_id'] ?? '',
    'binding:vif_type': p['binding:vif_type'] ?? 'unbound',
    'binding:vif_details': vifDetails(p['binding:vif_details']),
    'binding:vnic_type': p['binding:vnic_type'] ?? 'normal',
  };
}

/** The VIF details a compute node acts on; Neutron adds bookkeeping (bound_drivers) to some answers only. */
function vifDetails(d: Record<string, unknown> | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of ['connectivity', 'port_filter', 'bridge_name']) if (d?.[k] !== undefined) out[k] = d[k];
  return out;
}
