// The instance state vocabulary (nova's), apart from the models so that code which only names
// states (the CLI) does not load sequelize.
export type VmState =
  'building' | 'active' | 'stopped' | 'paused' | 'suspended' | 'resized' | 'soft-delete' | 'shelved' | 'shelved_offloaded' | 'error' | 'deleted';
export type TaskState =
  | 'spawning'
  | 'deleting'
  | 'powering-off'
  | 'powering-on'
  | 'rebooting'
  | 'rebooting_hard'
  | 'pausing'
  | 'unpausing'
  | 'suspending'
  | 'resuming'
  | 'rebuilding'
  | 'image_snapshot'
  | 'image_backup'
  | 'image_pending_upload'
  | 'image_uploading'
  | 'resize_prep'
  | 'resize_migrating'
  | 'resize_migrated'
  | 'resize_finish'
  | 'resize_reverting'
  | 'soft-deleting'
  | 'restoring'
  | 'shelving'
  | 'shelving_image_pending_upload'
  | 'shelving_image_uploading'
  | 'shelving_offloading'
  | 'unshelving';

/** nova's power_state integers. */
export const PowerState = { NOSTATE: 0, RUNNING: 1, PAUSED: 3, SHUTDOWN: 4, CRASHED: 6, SUSPENDED: 7 } as const;
