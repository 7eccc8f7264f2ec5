import type { MethodDoc } from '../rpc/reference.js';

const ev = (event: string) => [`instance.${event}.start`, `instance.${event}.end`];

/** The shelving methods as docs/rpc-reference.md describes them (merged into COMPUTE_DOCS). */
export const SHELVE_DOCS: Record<string, MethodDoc> = {
  shelve_instance: {
    kind: 'cast',
    summary:
      "Powers the container off (a paused or suspended one is thawed first), snapshots it into image_id (the image nova-api created, `<name>-shelved`; task shelving → shelving_image_pending_upload → shelving_image_uploading), records shelved_at, shelved_image_id and shelved_host in system_metadata: shelved, power shutdown. With [compute] shelved_offload_time = 0 (the default, as nova's) the offload follows at once (task shelving_offloading); a positive value offloads after that many seconds (checked every shelved_poll_interval), -1 never. A failed snapshot deletes the queued image and leaves a fault with the task cleared. Allowed from vm_state active, stopped, paused or suspended (task none or shelving).",
    errors: ['InstanceNotFound', 'InstanceInvalidState', "fault with the agent's snapshot error"],
    notifications: [...ev('shelve'), ...ev('shelve_offload')],
  },
  shelve_offload_instance: {
    kind: 'cast',
    summary:
      "Removes the container (its network unplugged; Neutron ports are kept for the unshelve), deletes the instance's Placement allocations (nova mode) before saving shelved_offloaded, then clears host, node and launched_on with the authority. The node's record keeps the node it left for listing and claims nothing. Allowed from vm_state shelved (task none or shelving_offloading).",
    errors: ['InstanceNotFound', 'InstanceInvalidState'],
    notifications: ev('shelve_offload'),
  },
  unshelve_instance: {
    kind: 'cast',
    summary:
      "On the node the scheduler chose (a node without a record of the instance makes one from nova's instance): task spawning, the flavor claimed here, host and node saved, the instance's networks set up, the container booted from `image` (the shelved snapshot; the shelved_image_id on record when null), the snapshot deleted, the shelve keys removed from system_metadata: active. A failure removes any container, deletes the allocations, leaves the instance shelved_offloaded on no host with a fault, and keeps the snapshot. Allowed from vm_state shelved_offloaded.",
    errors: [
      'InstanceNotFound',
      'InstanceInvalidState',
      'fault ComputeResourcesUnavailable',
      'fault ImageNotFound',
      'fault UnshelveException (no shelved image)',
    ],
    notifications: ev('unshelve'),
  },
};
