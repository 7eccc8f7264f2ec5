/**
 * The agent's local volumes API (docs/agent-api.md, "Volumes"; docs/volumes.md): what the berth
 * CLI sends and receives.
 */

/**
 * - `available`: attached to nothing;
 * - `reserved`: attached to an instance whose container does not bind it yet; the next create or
 *   rebuild of the instance mounts it;
 * - `in-use`: the instance's container binds it;
 * - `detaching`: detached while the instance's container still binds it; free once the container
 *   is removed or rebuilt.
 */
export type VolumeStatus = 'available' | 'reserved' | 'in-use' | 'detaching';

export interface VolumeAttachment {
  instance_uuid: string;
  /** Absolute path inside the container. */
  mount_point: string;
  attached_at: string;
}

export interface Volume {
  id: string;
  name: string;
  project_id: string;
  size_gb: number;
  status: VolumeStatus;
  attachment: VolumeAttachment | null;
  created_at: string;
  /** While mounted on the host: the filesystem's bytes and bytes used. */
  usage?: { size_bytes: number; used_bytes: number } | null;
}

export interface VolumeCreate {
  name: string;
  project_id: string;
  size_gb: number;
}

export interface VolumeAttach {
  instance_uuid: string;
  /** The project asking; the volume must be its own, and so must the instance. */
  project_id: string;
  mount_point: string;
}

/**
 * What an attach or detach did: `now` when the container saw the change at once, `next-start`
 * when a stopped container gets it when it starts, `next-create` when it applies at the
 * instance's next create or rebuild.
 */
export type VolumeChangeTiming = 'now' | 'next-start' | 'next-create';

export interface VolumeChange {
  volume: Volume;
  applies: VolumeChangeTiming;
}
