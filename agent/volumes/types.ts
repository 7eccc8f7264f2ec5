/**
 * Local volumes: named block storage a project owns on one host, attached to at most one of its
 * instances at a mount point (docs/volumes.md). The API shapes are in agent/client/volumes.ts.
 */

/** One GiB, the unit volume sizes are given in. */
export const GIB = 1024 ** 3;

/**
 * The host's block devices behind volumes (the agent → loop device boundary): a sparse file with
 * a filesystem Berth made, attached through a loop device and mounted on the host. The real one
 * is LoopVolumeDevices (loop-devices.ts); test/fakes/volume-devices.ts keeps directories, and
 * both pass test/conformance/volume-devices.ts.
 */
export interface VolumeDevices {
  /**
   * Makes volume `id`: a backing file of `sizeGb` GiB and a new filesystem on it, with an empty
   * data directory at its root. Fails (VOLUME_FAILED) when the volume's files exist already.
   */
  provision(id: string, sizeGb: number): Promise<void>;
  /**
   * Mounts the volume on the host (idempotent: a mounted volume stays as it is) and returns the
   * host directory a container binds: the data directory inside the volume's filesystem, which
   * does not exist while the filesystem is not mounted, so a bind of it fails rather than falling
   * through to the host's disk. VOLUME_NOT_FOUND when the volume has no files.
   */
  activate(id: string): Promise<string>;
  /** Unmounts the volume on the host; one not mounted is fine. */
  deactivate(id: string): Promise<void>;
  /** Unmounts and removes every file of the volume; a volume already gone is fine. */
  destroy(id: string): Promise<void>;
  /** The ids of the volumes whose files exist. */
  list(): Promise<string[]>;
  /** Bytes the filesystem holds and uses while mounted; null when it is not mounted. */
  usage(id: string): Promise<{ size_bytes: number; used_bytes: number } | null>;
}
