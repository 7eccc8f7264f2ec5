import type { InstanceRow } from '../db/models.js';
import type { Flavor } from '../objects/instance.js';
import { powerStateName } from '../compute/states.js';

/** nova's notification payload objects (nova/notifications/objects/instance.py, Zed versions). */
const obj = (name: string, version: string, data: Record<string, unknown>) => ({
  'nova_object.name': name,
  'nova_object.namespace': 'nova',
  'nova_object.version': version,
  'nova_object.data': data,
});

/** DateTimeField on the wire: `YYYY-MM-DDTHH:MM:SSZ`. */
export function wireDate(d: Date | null | undefined): string | null {
  return d ? `${d.toISOString().slice(0, 19)}Z` : null;
}

export interface NovaExtras {
  display_description?: string | null;
  reservation_id?: string | null;
  availability_zone?: string | null;
  key_name?: string | null;
  metadata?: Record<string, string>;
  addresses?: { address: string; version: number; network_label: string | null; mac: string | null }[];
  /** nova's system_metadata keys this node sets (a shelve's shelved_at, shelved_image_id, shelved_host). */
  system_metadata?: Record<string, string>;
}

export interface FaultInfo {
  exception: string;
  message: string;
}

function flavorPayload(f: Flavor) {
  return obj('FlavorPayload', '1.4', {
    flavorid: f.flavorid,
    memory_mb: f.memory_mb,
    vcpus: f.vcpus,
    root_gb: f.root_gb,
    ephemeral_gb: f.ephemeral_gb,
    name: f.name,
    swap: f.swap,
    rxtx_factor: 1.0,
    vcpu_weight: 0,
    disabled: false,
    is_public: true,
    extra_specs: f.extra_specs,
    projects: null,
    description: null,
  });
}

function faultPayload(fault: FaultInfo | null) {
  if (!fault) return null;
  return obj('ExceptionPayload', '1.1', {
    module_name: 'nova.exception',
    function_name: 'berth',
    exception: fault.exception,
    exception_message: fault.message,
    traceback: '',
  });
}

export interface StateUpdate {
  old_state: string;
  state: string;
  old_task_state: string | null;
  new_task_state: string | null;
}

export interface PayloadInput {
  row: InstanceRow;
  requestId: string | null;
  initiatorUser: string | null;
  initiatorProject: string | null;
  fault?: FaultInfo | null;
  snapshotImageId?: string | undefined;
  stateUpdate?: StateUpdate;
}

export function instancePayload(event: string, p: PayloadInput): Record<string, unknown> {
  const { row } = p;
  const extras = JSON.parse(row.nova) as NovaExtras;
  const flavor = JSON.parse(row.flavor) as Flavor;
  const ips = (extras.addresses ?? []).map((a) =>
    obj('IpPayload', '1.0', {
      label: a.network_label,
      mac: a.mac,
      meta: {},
      port_uuid: null,
      version: a.version,
      address: a.address,
      device_name: null,
    }),
  );
  if (!ips.length && row.ip_address) {
    ips.push(obj('IpPayload', '1.0', { label: 'berth', mac: null, meta: {}, port_uuid: null, version: 4, address: row.ip_address, device_name: null }));
  }
  const data: Record<string, unknown> = {
    uuid: row.uuid,
    user_id: row.user_id,
    tenant_id: row.project_id,
    reservation_id: extras.reservation_id ?? null,
    display_name: row.display_name,
    display_description: extras.display_description ?? null,
    host_name: row.hostname,
    host: row.host,
    node: row.node,
    os_type: null,
    architecture: null,
    availability_zone: extras.availability_zone ?? null,
    flavor: flavorPayload(flavor),
    image_uuid: row.image_ref,
    key_name: extras.key_name ?? null,
    kernel_id: '',
    ramdisk_id: '',
    created_at: wireDate(row.created_at),
    launched_at: wireDate(row.launched_at),
    terminated_at: wireDate(row.terminated_at),
    deleted_at: wireDate(row.deleted_at),
    updated_at: wireDate(row.updated_at),
    state: row.vm_state,
    power_state: powerStateName(row.power_state),
    task_state: row.task_state,
    progress: 0,
    ip_addresses: ips,
    block_devices: null,
    metadata: extras.metadata ?? {},
    locked: false,
    auto_disk_config: 'MANUAL',
    request_id: p.requestId,
    action_initiator_user: p.initiatorUser,
    action_initiator_project: p.initiatorProject,
    locked_reason: null,
    fault: faultPayload(p.fault ?? null),
  };
  if (event === 'create') {
    return obj('InstanceCreatePayload', '1.12', { keypairs: [], tags: [], trusted_image_certificates: null, instance_name: `instance-${row.uuid}`, ...data });
  }
  if (event === 'update') {
    const su = p.stateUpdate ?? { old_state: row.vm_state, state: row.vm_state, old_task_state: row.task_state, new_task_state: row.task_state };
    const { request_id: _r, action_initiator_user: _u, action_initiator_project: _p, locked_reason: _l, ...base } = data;
    const now = new Date();
    return obj('InstanceUpdatePayload', '1.9', {
      ...base,
      state_update: obj('InstanceStateUpdatePayload', '1.0', { ...su }),
      old_display_name: null,
      tags: [],
      audit_period: obj('AuditPeriodPayload', '1.0', {
        audit_period_beginning: wireDate(new Date(now.getFullYear(), now.getMonth(), 1)),
        audit_period_ending: wireDate(now),
      }),
    });
  }
  if (event === 'snapshot') return obj('InstanceActionSnapshotPayload', '1.9', { snapshot_image_id: p.snapshotImageId ?? null, ...data });
  return obj('InstanceActionPayload', '1.8', data);
}

/** The flat legacy (unversioned) payload of compute.instance.* events. */
export function legacyPayload(p: PayloadInput): Record<string, unknown> {
  const { row } = p;
  const flavor = JSON.parse(row.flavor) as Flavor;
  return {
    tenant_id: row.project_id,
    user_id: row.user_id,
    instance_id: row.uuid,
    display_name: row.display_name,
    hostname: row.hostname,
    host: row.host,
    node: row.node,
    instance_type: flavor.name,
    instance_flavor_id: flavor.flavorid,
    memory_mb: flavor.memory_mb,
    vcpus: flavor.vcpus,
    root_gb: flavor.root_gb,
    disk_gb: flavor.root_gb + flavor.ephemeral_gb,
    state: row.vm_state,
    state_description: row.task_state ?? '',
    power_state: powerStateName(row.power_state),
    image_ref_url: row.image_ref,
    launched_at: row.launched_at?.toISOString() ?? '',
    terminated_at: row.terminated_at?.toISOString() ?? '',
    deleted_at: row.deleted_at?.toISOString() ?? '',
    created_at: row.created_at.toISOString(),
    fixed_ips: row.ip_address ? [{ address: row.ip_address, version: 4 }] : [],
    ...(p.fault ? { exception: { class: p.fault.exception, message: p.fault.message } } : {}),
  };
}
