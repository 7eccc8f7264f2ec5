import type { MethodDoc } from '../rpc/reference.js';

/**
 * The compute node's RPC methods as integrators need to know them (see MethodDoc).
 * docs/rpc-reference.md is generated from this and the endpoints' parameter lists; a unit test
 * keeps both complete.
 */
export type { MethodDoc };

const phases = (event: string) => [`instance.${event}.start`, `instance.${event}.end`, `instance.${event}.error`];
const power = (event: string, summary: string, from: string): MethodDoc => ({
  kind: 'cast',
  summary: `${summary} Allowed from vm_state ${from}; the instance's task_state is set while it runs.`,
  errors: ['InstanceNotFound', 'InstanceInvalidState'],
  notifications: phases(event),
});
const unsupported: MethodDoc = {
  kind: 'cast or call',
  summary: 'Not supported by a container node: calls get the failure, casts record an instance fault.',
  errors: ['NotImplementedError'],
};

export const COMPUTE_DOCS: Record<string, MethodDoc> = {
  build_and_run_instance: {
    kind: 'cast',
    summary:
      'Claims vcpus, memory and disk from the flavor, records the instance (building/spawning), fetches the image if the host lacks it, creates and starts its container, then active/running. Idempotent per instance uuid and per message id.',
    errors: [
      'InvalidInput (undecodable instance)',
      'fault ComputeResourcesUnavailable',
      'fault ImageNotFound',
      'fault ImageUnacceptable',
      'fault ComputeServiceUnavailable (agent unreachable)',
    ],
    notifications: phases('create'),
  },
  terminate_instance: {
    kind: 'cast',
    summary: 'Removes the container and releases the claims; the record becomes deleted. Succeeds if the instance is already gone.',
    errors: ['InstanceTerminationFailure'],
    notifications: ['instance.delete.start', 'instance.delete.end'],
  },
  stop_instance: power('power_off', 'Stops the container (SIGTERM, then SIGKILL after [docker] stop_timeout).', 'active or error'),
  start_instance: power('power_on', 'Starts a stopped container.', 'stopped'),
  pause_instance: power('pause', 'Freezes the container (cgroup freezer).', 'active'),
  unpause_instance: power('unpause', 'Thaws a paused container.', 'paused'),
  suspend_instance: power('suspend', 'Freezes the container; the instance is reported suspended.', 'active'),
  resume_instance: power('resume', 'Thaws a suspended container.', 'suspended'),
  reboot_instance: power(
    'reboot',
    'SOFT restarts the container gracefully (active only); HARD kills and starts it (also from stopped, paused, suspended, error).',
    'active (SOFT); active, stopped, paused, suspended, error (HARD)',
  ),
  rebuild_instance: {
    ...power(
      'rebuild',
      'Replaces the container with one from image_ref, keeping uuid, flavor, network and config drive. recreate (evacuate), preserve_ephemeral and reimage_boot_volume are refused.',
      'active, stopped or error',
    ),
    errors: ['InstanceInvalidState', 'PreserveEphemeralNotSupported', 'NotImplementedError'],
  },
  snapshot_instance: {
    kind: 'cast',
    summary:
      'Freezes the container only while committing it, then streams the image into the queued Glance image image_id (created by the caller). vm_state unchanged; task_state image_snapshot → image_pending_upload → image_uploading.',
    errors: ['InstanceNotFound', 'InstanceInvalidState', "fault with the agent's snapshot error"],
    notifications: phases('snapshot'),
  },
  backup_instance: {
    kind: 'cast',
    summary:
      "A snapshot into image_id, then rotation: of this instance's active images owned by its project with image_type=backup and this backup_type, only the newest `rotation` are kept (images of other projects carrying the same properties are neither counted nor deleted).",
    errors: ['InstanceNotFound', 'InstanceInvalidState'],
    notifications: phases('snapshot'),
  },
  get_console_output: {
    kind: 'call',
    summary: "The container's console (stdout and stderr), the last tail_length lines (all when null), capped at 1 MiB.",
    errors: ['InstanceNotFound'],
  },
  get_diagnostics: { kind: 'call', summary: 'A dict: state, uptime, memory limit, vcpus, IP address, start time, exit code.', errors: ['InstanceNotFound'] },
  get_instance_diagnostics: {
    kind: 'call',
    summary: 'A nova Diagnostics 1.0 object (hypervisor docker); figures not measured are left unset.',
    errors: ['InstanceNotFound'],
  },
  set_admin_password: {
    kind: 'call',
    summary: "Containers have no guest agent: answered with nova's SetAdminPasswdNotSupported.",
    errors: ['InstanceNotFound', 'SetAdminPasswdNotSupported'],
  },
  inject_network_info: { kind: 'cast', summary: 'Accepted; the agent configures container networking itself.', errors: ['InstanceNotFound'] },
  reset_network: { kind: 'cast', summary: "Removed from nova's 6.x API; accepted from old callers, nothing to reset.", errors: ['InstanceNotFound'] },
  get_host_uptime: { kind: 'call', summary: "The host's uptime(1) line (nova-api asks it for `hypervisor list` at microversion 2.88 and later)." },
  external_instance_event: {
    kind: 'cast',
    summary:
      'Events nova-api relays from Neutron and Cinder (network-vif-plugged, volume-extended, ...): accepted and ignored, a container node attaches no such devices.',
    errors: ['InvalidInput (events not a list)'],
  },
  set_host_enabled: {
    kind: 'call',
    summary:
      'enabled=false keeps the scheduler from placing new instances here: in nova mode the COMPUTE_STATUS_DISABLED trait is added to the node\'s Placement provider (removed again with true). Returns "enabled" or "disabled".',
    errors: ['InvalidInput (enabled not a boolean)'],
  },
};

export const BASEAPI_DOCS: Record<string, MethodDoc> = {
  ping: { kind: 'call', summary: 'Returns {"service": "compute", "arg": arg}. Routed to the shared compute topic or a host.' },
  get_backdoor_port: { kind: 'call', summary: 'Always null: Berth has no eventlet backdoor.' },
};

export const BERTH_DOCS: Record<string, MethodDoc> = {
  list_instances: { kind: 'call', summary: "The node's instances (all=true includes deleted ones)." },
  show_instance: { kind: 'call', summary: 'One instance with its latest fault and its instance actions.', errors: ['InstanceNotFound'] },
  get_host_capacity: {
    kind: 'call',
    summary:
      'Per resource class: total, reserved, allocation ratio, capacity, used, free; and the instance count. Also published periodically as compute.capacity.update.',
  },
  sync_power_states: { kind: 'call', summary: 'Runs the power-state sync now; returns how many records were corrected and unknown containers.' },
};

export function unsupportedDoc(): MethodDoc {
  return unsupported;
}
