import { errorFactory, type ErrorCatalog, type ErrorFactory } from '../../common/errors.js';

/**
 * The Neutron calls a compute node makes for its instances' ports, as nova-compute makes them
 * (nova/network/neutron.py): create and bind a port for a requested network, bind a port the
 * caller made, read back what the node needs to plug it (network, subnets), and release it again.
 * HttpNeutron (http.ts) is the real one; test/fakes/neutron.ts keeps the same behaviour in memory,
 * and both pass test/conformance/neutron.ts.
 *
 * Errors are BerthError with the stable codes below (NEUTRON_ERROR_CODES); `details.neutron_type`
 * carries Neutron's own exception name (IpAddressAlreadyAllocated, MacAddressInUse, ...) when it
 * gave one.
 */
export interface NeutronClient {
  /** The ports of a device (an instance uuid) or of a network; ordered by id. */
  listPorts(filter: PortFilter): Promise<NeutronPort[]>;
  showPort(id: string): Promise<NeutronPort>;
  /** A new port on a network, bound to `host` and owned by the device, in one request. */
  createPort(req: PortCreate): Promise<NeutronPort>;
  /** Binds an existing port (one the caller created and named in requested_networks) to the device and host. */
  bindPort(id: string, binding: PortBinding): Promise<NeutronPort>;
  /** Clears device, owner and host of a port the caller keeps (nova's preserve_on_delete). */
  unbindPort(id: string): Promise<NeutronPort>;
  /** Deletes a port; an absent port is fine. */
  deletePort(id: string): Promise<void>;
  showNetwork(id: string): Promise<NeutronNetwork>;
  showSubnet(id: string): Promise<NeutronSubnet>;
  /**
   * The ids of a project's security groups by name or id, as nova resolves a build's
   * `security_groups` (`_process_security_groups`: nova-api hands the compute node ids for groups
   * requested by name, and names for others): a name matches first, then an id; one the project
   * has none of is NEUTRON_NOT_FOUND, a name it has twice NEUTRON_CONFLICT.
   */
  securityGroupIds(projectId: string, namesOrIds: string[]): Promise<string[]>;
  /**
   * The floating IPs associated with any of the given ports, in one request (nova asks per fixed
   * IP: `_get_floating_ips_by_fixed_and_port`); none for no ports, and none when Neutron has no
   * L3 API (no router service plugin: 404), as nova treats it. Ordered by id.
   */
  listFloatingIps(portIds: string[]): Promise<NeutronFloatingIp[]>;
}

/** A floating IP associated with a port: the address on the external network and the fixed address it forwards to. */
export interface NeutronFloatingIp {
  id: string;
  floating_ip_address: string;
  port_id: string;
  fixed_ip_address: string;
}

export interface PortFilter {
  device_id?: string;
  network_id?: string;
  /** `network:dhcp`: the DHCP agent's ports of a network. */
  device_owner?: string;
}

export interface FixedIp {
  subnet_id: string;
  ip_address: string;
}

/** A port, with the fields nova's network model is built from. */
export interface NeutronPort {
  id: string;
  name: string;
  network_id: string;
  project_id: string;
  mac_address: string;
  fixed_ips: FixedIp[];
  device_id: string;
  device_owner: string;
  /** DOWN until the L2 agent has wired the plugged tap; then ACTIVE. */
  status: string;
  security_groups: string[];
  port_security_enabled: boolean;
  'binding:host_id': string;
  /** `bridge` when the linuxbridge mechanism bound it; `unbound` / `binding_failed` otherwise. */
  'binding:vif_type': string;
  'binding:vif_details': Record<string, unknown>;
  'binding:vnic_type': string;
}

export interface PortBinding {
  /** The instance uuid. */
  device_id: string;
  /** `compute:<availability zone>`. */
  device_owner: string;
  /** The host name the L2 agent of this machine reports to Neutron. */
  host: string;
}

export interface PortCreate extends PortBinding {
  network_id: string;
  /** The instance's project: the port is the tenant's, as when nova creates it with the user's token. */
  project_id: string;
  name?: string;
  /** Wanted addresses (nova's `--nic net-id=X,v4-fixed-ip=A`); Neutron picks one per subnet when absent. */
  fixed_ips?: Array<{ ip_address: string; subnet_id?: string }>;
  /** Security group ids; absent: the project's `default` group. */
  security_groups?: string[];
}

export interface NeutronNetwork {
  id: string;
  name: string;
  project_id: string;
  mtu: number;
  shared: boolean;
  status: string;
  subnets: string[];
}

export interface NeutronSubnet {
  id: string;
  network_id: string;
  cidr: string;
  ip_version: number;
  gateway_ip: string | null;
  enable_dhcp: boolean;
  dns_nameservers: string[];
  host_routes: Array<{ destination: string; nexthop: string }>;
}

/** nova's matching of requested security groups against a project's groups (securityGroupIds). */
export function resolveSecurityGroups(projectId: string, requested: string[], groups: ReadonlyArray<{ id: string; name: string }>): string[] {
  return requested.map((want) => {
    const named = groups.filter((g) => g.name === want);
    if (named.length > 1) throw neutronError('NEUTRON_CONFLICT', `project ${projectId} has ${named.length} security groups named ${want}`, { name: want });
    const found = named[0] ?? groups.find((g) => g.id === want);
    if (!found) throw neutronError('NEUTRON_NOT_FOUND', `project ${projectId} has no security group named or with id ${want}`, { name: want });
    return found.id;
  });
}

export const NEUTRON_ERROR_CODES = [
  'NEUTRON_NOT_FOUND',
  'NEUTRON_CONFLICT',
  'NEUTRON_BAD_REQUEST',
  'NEUTRON_FORBIDDEN',
  'NEUTRON_UNAVAILABLE',
  'NEUTRON_ERROR',
  'PORT_IN_USE',
  'PORT_BINDING_FAILED',
  'VIF_TYPE_UNSUPPORTED',
] as const;
export type NeutronErrorCode = (typeof NEUTRON_ERROR_CODES)[number];

export const NEUTRON_ERRORS: ErrorCatalog<NeutronErrorCode> = {
  NEUTRON_NOT_FOUND: { status: 404 },
  NEUTRON_CONFLICT: { status: 409 },
  NEUTRON_BAD_REQUEST: { status: 400 },
  NEUTRON_FORBIDDEN: { status: 403 },
  NEUTRON_UNAVAILABLE: { status: 503, retryable: true },
  NEUTRON_ERROR: { status: 502 },
  /** A requested port belongs to another device. */
  PORT_IN_USE: { status: 409 },
  /** Neutron could not bind a port to this node (no live L2 agent for the host, or none for the network's type). */
  PORT_BINDING_FAILED: { status: 409 },
  /** A VIF of a type other than `bridge`: a container cannot be plugged into it. */
  VIF_TYPE_UNSUPPORTED: { status: 400 },
};

export const neutronError: ErrorFactory<NeutronErrorCode> = errorFactory(NEUTRON_ERRORS);

/** The error code for a Neutron HTTP status. */
export function codeForStatus(status: number): NeutronErrorCode {
  if (status === 404) return 'NEUTRON_NOT_FOUND';
  if (status === 409) return 'NEUTRON_CONFLICT';
  if (status === 400) return 'NEUTRON_BAD_REQUEST';
  if (status === 403) return 'NEUTRON_FORBIDDEN';
  if (status === 503) return 'NEUTRON_UNAVAILABLE';
  return 'NEUTRON_ERROR';
}

/** `tap` + the port id, cut to 14 characters: the name nova and the linuxbridge agent give the host end. */
export const tapName = (portId: string): string => `tap${portId}`.slice(0, 14);
/** `brq` + the network id, cut to 14 characters: the linuxbridge agent's bridge of a network. */
export const bridgeName = (networkId: string): string => `brq${networkId}`.slice(0, 14);
