import { loadavg, uptime as osUptime } from 'node:os';
import type { InstanceStatus } from '../../agent/client/types.js';
import type { InstanceRow } from '../db/models.js';
import type { Flavor } from '../objects/instance.js';
import { powerStateName } from './states.js';

/**
 * Diagnostics as nova returns them: `get_instance_diagnostics` a Diagnostics 1.0 object,
 * `get_diagnostics` the driver-specific dict. Figures Berth does not measure yet are left unset
 * (omitted), never invented.
 */
const prim = (name: string, data: Record<string, unknown>) => ({
  'nova_object.name': name,
  'nova_object.namespace': 'nova',
  'nova_object.version': '1.0',
  'nova_object.data': data,
  'nova_object.changes': Object.keys(data),
});

function uptimeSeconds(status: InstanceStatus | null): number | undefined {
  if (!status?.started_at || status.power_state !== 'running') return undefined;
  return Math.max(0, Math.floor((Date.now() - Date.parse(status.started_at)) / 1000));
}

export function instanceDiagnostics(row: InstanceRow, status: InstanceStatus | null): Record<string, unknown> {
  const flavor = JSON.parse(row.flavor) as Flavor;
  const uptime = uptimeSeconds(status);
  const data: Record<string, unknown> = {
    state: status
      ? status.power_state === 'stopped'
        ? 'shutdown'
        : status.power_state === 'missing'
          ? 'pending'
          : status.power_state
      : powerStateName(row.power_state),
    // `driver` is left unset: nova's field is an enum of its own drivers (libvirt, ...), and a
    // caller rejects any other value. `hypervisor` is a free string.
    hypervisor: 'docker',
    hypervisor_os: 'linux',
    config_drive: true,
    memory_details: prim('MemoryDiagnostics', { maximum: flavor.memory_mb }),
    cpu_details: [],
    nic_details: [],
    disk_details: [],
    num_cpus: flavor.vcpus,
    num_nics: status?.ip_address ? 1 : 0,
    num_disks: 0,
  };
  if (uptime !== undefined) data.uptime = uptime;
  return prim('Diagnostics', data);
}

export function legacyDiagnostics(row: InstanceRow, status: InstanceStatus | null): Record<string, unknown> {
  const flavor = JSON.parse(row.flavor) as Flavor;
  return {
    state: status?.power_state ?? 'missing',
    uptime: uptimeSeconds(status) ?? 0,
    memory_limit_mb: flavor.memory_mb,
    vcpus: flavor.vcpus,
    ip_address: status?.ip_address ?? null,
    started_at: status?.started_at ?? null,
    exit_code: status?.exit_code ?? null,
  };
}

/** uptime(1)-style line, as nova's get_host_uptime returns it. */
export function hostUptime(): string {
  const secs = Math.floor(osUptime());
  const days = Math.floor(secs / 86400);
  const hh = Math.floor((secs % 86400) / 3600);
  const mm = String(Math.floor((secs % 3600) / 60)).padStart(2, '0');
  const now = new Date().toTimeString().slice(0, 8);
  const [l1, l5, l15] = loadavg().map((l) => l.toFixed(2));
  return ` ${now} up ${days} days, ${hh}:${mm},  0 users,  load average: ${l1}, ${l5}, ${l15}`;
}
