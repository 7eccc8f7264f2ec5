import type { MethodDoc } from '../rpc/reference.js';
import { SHELVE_DOCS } from './shelve-docs.js';
import { SERIAL_CONSOLE_DOCS } from './serial-console.js';

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
  ...SERIAL_CONSOLE_DOCS,
  build_and_run_instance: {
    kind: 'cast',
    summary:
      'Claims vcpus, memory and disk from the flavor, records the instance (building/spawning), fetches the image if the host lacks it, creates and starts its container, then active/running. In nova mode with [neutron], `requested_networks` (`--network`, `--port`) get ports bound to this host, plugged into the container as eth0, eth1 ..., awaited as network-vif-plugged ([compute] vif_plugging_timeout, vif_plugging_is_fatal) and saved as the info cache; `--nic none` keeps the project network. Idempotent per instance uuid and per message id.',
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
  start_instance: power(
    'power_on',
    "Starts a stopped container. Of a shelved instance (nova's conductor unshelves one not offloaded this way, task powering-on), also deletes the shelved snapshot and removes the shelve keys from system_metadata.",
    'stopped or shelved',
  ),
  pause_instance: power('pause', 'Freezes the container (cgroup freezer).', 'active'),
  unpause_instance: power('unpause', 'Thaws a paused container.', 'paused'),
  suspend_instance: power('suspend', 'Freezes the container; the instance is reported suspended.', 'active'),
  resume_instance: power('resume', 'Thaws a suspended container.', 'suspended'),
  soft_delete_instance: power(
    'soft_delete',
    'Stops the container and keeps it, with its claim, as soft-delete (task soft-deleting) until restore_instance or terminate_instance. Reclaiming after [DEFAULT] reclaim_instance_interval is not done by the node yet.',
    'active, stopped or error',
  ),
  restore_instance: power('restore', 'Starts the kept container of a soft-deleted instance again (task restoring): active.', 'soft-delete'),
  trigger_crash_dump: {
    kind: 'cast',
    summary:
      "Sends SIGQUIT (where a VM gets an NMI) to the guest's init; the guest decides what to dump (as PID 1 it sees the signal only if it handles it). No state changes. Allowed from vm_state active, paused, resized or error; a guest that is not running is InstanceNotRunning (a fault).",
    errors: ['InstanceNotFound', 'InstanceInvalidState', 'fault InstanceNotRunning'],
    notifications: ['instance.trigger_crash_dump.start', 'instance.trigger_crash_dump.end'],
  },
  reboot_instance: power(
    'reboot',
    'SOFT restarts the container gracefully (active only); HARD kills and starts it (also from stopped, paused, suspended, error).',
    'active (SOFT); active, stopped, paused, suspended, error (HARD)',
  ),
  rebuild_instance: {
    ...power(
      'rebuild',
      "Replaces the container with one from image_ref, keeping uuid, flavor, network and config drive. With recreate=true (evacuate, the instance's host being down): boots it from its image on this node under a move claim, records an evacuation migration (pre-migrating, then done; failed when the claim or the spawn fails), moves the instance's host and node here, and leaves a stopped instance stopped; the old host removes its leftover container when it starts again and completes the migration. Needs the instance's record (nodes on one database) or takes it from the primitive (nodes with their own records). preserve_ephemeral, reimage_boot_volume and on_shared_storage=true are refused.",
      'active, stopped or error',
    ),
    errors: [
      'InstanceInvalidState',
      'PreserveEphemeralNotSupported',
      'NotImplementedError',
      'InvalidSharedStorage',
      'InstanceExists',
      'ComputeResourcesUnavailable',
      'ComputeServiceUnavailable (maintenance)',
    ],
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
  prep_resize: {
    kind: 'cast',
    summary:
      "Resize on the instance's own host (nova's allow_resize_to_same_host): claims the new flavor on top of the old one (a move claim, held until confirm or revert), records the migration (pre-migrating), then runs resize_instance and finish_resize here in turn. A cold migration (same flavor) to the instance's own host is refused with UnableToMigrateToSelf, as nova answers for a driver that cannot migrate to the same host. For an instance on another host this node is the destination (driver/compute/migrate.ts): it fetches the instance's image through its agent (MigrationError when it cannot), claims the new flavor, records the migration with itself as dest_compute and casts resize_instance to the source. A failed step leaves the migration in error and hands the migration consumer's Placement allocations back to the instance. Allowed from vm_state active or stopped (task none or resize_prep).",
    errors: ['InstanceNotFound', 'InstanceInvalidState', 'MigrationError', 'UnableToMigrateToSelf', 'ComputeResourcesUnavailable'],
    notifications: [...phases('resize_prep'), ...phases('resize'), ...phases('resize_finish')],
  },
  resize_instance: {
    kind: 'cast',
    summary:
      "The source half of a resize. Same host (prep_resize runs it itself): task resize_migrating (saved guarded by resize_prep) → resize_migrated, migration migrating → post-migrating, old_flavor recorded; nothing leaves the host. To another node (dest_compute another host): resize_prep then resize on this node; the container is stopped (clean_shutdown: with its grace period), committed and uploaded into a private image of the instance's project without the layers of the instance's image (the agent's omit_base_layers), the bytes recorded on the migration, then finish_resize is cast to the destination with that image and this node's record in disk_info. A failure starts the guest again, deletes the image and leaves the migration in error.",
    errors: ['InstanceNotFound', 'InstanceInvalidState', 'MigrationNotFound', 'MigrationError'],
    notifications: [...phases('resize_prep'), ...phases('resize')],
  },
  finish_resize: {
    kind: 'cast',
    summary:
      "Applies the new flavor's limits (memory, swap, CPU, pids) to the container in place through the agent (Docker's update API; the guest keeps running, or stays stopped), saves the flavor fields, migration finished; the instance becomes resized with its power state unchanged. A failure leaves it in error. From another node (disk_info from a Berth source): the instance's record placed on this node, a container created from the carried image with the new flavor: an instance on Neutron keeps its ports, bound to this host and plugged here, the move waiting for their network-vif-plugged as a build does (vif_plugging_timeout, vif_plugging_is_fatal); one on a project network gets a new address on this node's; stopped again when it was stopped; host, node and the three flavors saved, migration finished, resized; then Berth's resize_finished is cast to the source.",
    errors: ['InstanceNotFound', 'InstanceInvalidState', 'MigrationNotFound', 'fault InvalidInput (the engine cannot change the kind of CPU bound in place)'],
    notifications: phases('resize_finish'),
  },
  confirm_resize: {
    kind: 'cast',
    summary:
      "Releases the old flavor's claim and the migration consumer's Placement allocations, migration confirmed; the instance becomes active (stopped if powered off), old_flavor and new_flavor cleared. A migration already confirmed, or not finished, is left as it is (nova's checks). Of a move to another node (sent to the source): the source's container removed, its claim and the migration consumer's allocations released, the carrying image deleted, then Berth's confirm_resize_at_destination is cast to the destination, whose instance leaves resized.",
    errors: ['InstanceNotFound', 'InstanceInvalidState'],
    notifications: phases('resize_confirm'),
  },
  revert_resize: {
    kind: 'cast',
    summary:
      "Both halves of a revert on the one host: the old flavor's limits back on the container, the flavor fields restored, the migration consumer's allocations moved back to the instance (nova's _revert_allocation), migration reverted; active (stopped if powered off). Repeatable. Of a move to another node (sent to the destination): the new container removed, the claim here released (migration reverting), the record handed back, finish_revert_resize cast to the source.",
    errors: ['InstanceNotFound', 'InstanceInvalidState', 'MigrationNotFound (not finished)'],
    notifications: phases('resize_revert'),
  },
  finish_revert_resize: {
    kind: 'cast',
    summary:
      "revert_resize did the source half already on this host; a migration not yet reverted is reverted as revert_resize does, a reverted one is left. Of a move to another node (on the source): the record back on this node, host and node saved, the instance's Neutron ports bound to this host again, the original container started again (unless it was stopped; its ports plugged, their network-vif-plugged awaited), the old flavor's fields saved, the allocations moved back to the instance, migration reverted, the carrying image deleted.",
    errors: ['InstanceNotFound', 'InstanceInvalidState'],
    notifications: phases('resize_revert'),
  },
  get_console_output: {
    kind: 'call',
    summary:
      "The container's console (stdout and stderr) as nova gives it: the newest 100 KiB, then the last tail_length pieces split on newlines (a log ending in a newline gives tail_length - 1 lines and an empty piece; all when null).",
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
  attach_interface: {
    kind: 'call',
    summary:
      "nova's attach_interface, with [neutron]: the requested port bound to the instance, or a new port on network_id (with requested_ip) bound to this host, plugged into the container at once as the next free ethN (and after every later start), the network info cache saved with it; returns the VIF. From vm_state active, paused or stopped. A plug that fails releases the port.",
    errors: [
      'InstanceNotFound',
      'InstanceInvalidState',
      'AttachInterfaceNotSupported (no [neutron])',
      'NetworkInterfaceTaggedAttachNotSupported',
      'InterfaceAttachFailed',
      'PortInUse',
      'PortBindingFailed',
    ],
    notifications: ['instance.interface_attach.start', 'instance.interface_attach.end', 'instance.interface_attach.error'],
  },
  detach_interface: {
    kind: 'cast',
    summary:
      "nova's detach_interface: the port's VIF unplugged from the container (and not plugged again by a later start), then the port deleted, or unbound and kept when the caller made it; the network info cache saved without it.",
    errors: ['InstanceNotFound', 'InstanceInvalidState', 'fault PortNotFound', 'fault InterfaceDetachFailed'],
    notifications: ['instance.interface_detach.start', 'instance.interface_detach.end', 'instance.interface_detach.error'],
  },
  external_instance_event: {
    kind: 'cast',
    summary:
      "Events nova-api relays from Neutron and Cinder: network-vif-plugged (and -unplugged) go to the build waiting for them, network-changed and network-vif-deleted refresh the instance's network info cache from Neutron; others (volume-extended ...) are accepted and ignored.",
    errors: ['InvalidInput (events not a list)'],
  },
  set_host_enabled: {
    kind: 'call',
    summary:
      'enabled=false keeps the scheduler from placing new instances here: in nova mode the COMPUTE_STATUS_DISABLED trait is added to the node\'s Placement provider (removed again with true). Returns "enabled" or "disabled".',
    errors: ['InvalidInput (enabled not a boolean)'],
  },
  ...SHELVE_DOCS,
  cache_images: {
    kind: 'call',
    summary:
      "Fetches each image onto the host as a build would (the image service's registry endpoint or a docker-load archive) and answers per image id as nova's driver cache_image contract does: cached (fetched now), existing (on the host already), error (unknown image, one that cannot boot, image service unreachable).",
    errors: ['InvalidInput (image_ids not a list of ids)'],
  },
  host_maintenance_mode: {
    kind: 'call',
    summary:
      'mode=true enters a maintenance window: the node takes no new instances (builds fail with ComputeServiceUnavailable, evacuations to it are refused), the scheduler is told as by set_host_enabled(false), and running instances are left running (a container cannot be live-migrated; move them with resize/migrate, or evacuate once the node is down). Kept across restarts. Returns "on_maintenance" or "off_maintenance".',
    errors: ['InvalidInput (mode not a boolean)'],
  },
};

const liveMigration: MethodDoc = {
  kind: 'cast or call',
  summary:
    "Refused with nova's MigrationPreCheckError, which the conductor answers as a refused request (HTTP 400 from nova-api): a running container moves between hosts only through CRIU checkpoints, which work for trivial containers only. Cold migration or resize instead.",
  errors: ['MigrationPreCheckError'],
};
for (const m of [
  'check_can_live_migrate_destination',
  'check_can_live_migrate_source',
  'live_migration',
  'pre_live_migration',
  'post_live_migration_at_destination',
  'rollback_live_migration_at_destination',
  'live_migration_abort',
  'live_migration_force_complete',
]) {
  COMPUTE_DOCS[m] = liveMigration;
}

export const BASEAPI_DOCS: Record<string, MethodDoc> = {
  ping: { kind: 'call', summary: 'Returns {"service": "compute", "arg": arg}. Routed to the shared compute topic or a host.' },
  get_backdoor_port: { kind: 'call', summary: 'Always null: Berth has no eventlet backdoor.' },
};

export const BERTH_DOCS: Record<string, MethodDoc> = {
  list_instances: {
    kind: 'call',
    summary: "The node's instances (all=true includes deleted ones; all_hosts=true those of every node on the node's database).",
  },
  resize_finished: {
    kind: 'cast',
    summary:
      "From the destination of a move to another node, once finish_resize succeeded there: this (source) node's record of the instance follows it (host the destination, resized), so the old flavor is held by the migration until confirm or revert. Repeatable.",
  },
  confirm_resize_at_destination: {
    kind: 'cast',
    summary:
      'From the source of a move to another node, once confirm_resize removed its container: the instance leaves resized here (resize_confirm), migration confirmed. Repeatable.',
    notifications: phases('resize_confirm'),
  },
  show_instance: {
    kind: 'call',
    summary:
      "One instance with its latest fault, its instance actions, its latest migration (uuid, status, type, source_compute, dest_compute, transferred_bytes; null when it never moved) and the system_metadata keys the node set (a shelve's shelved_at, shelved_image_id, shelved_host).",
    errors: ['InstanceNotFound'],
  },
  get_host_capacity: {
    kind: 'call',
    summary:
      'Per resource class: total, reserved, allocation ratio, capacity, used, free; the instance count, and whether the node is in maintenance. Also published periodically as compute.capacity.update.',
  },
  sync_power_states: { kind: 'call', summary: 'Runs the power-state sync now; returns how many records were corrected and unknown containers.' },
};

export function unsupportedDoc(): MethodDoc {
  return unsupported;
}
