import { bool, int, str, type OptionSpec } from './spec.js';

/** Local volumes (agent/volumes/, docs/volumes.md). */
export const volumesSections = {
  volumes: {
    enabled: bool(
      true,
      "Offer local volumes: named ext4 filesystems on sparse files under path, attached through loop devices and bind-mounted into a project's instances (the agent runs as root). false: the agent's /v1/volumes API answers 404 and instances are created without volumes.",
    ),
    path: str(
      '$state_path/volumes',
      "Folder of the volumes' backing files, their host mount points and their records. Put it on a filesystem with room for max_total_gb: files are sparse, so space is taken as guests write.",
    ),
    hot_attach: bool(
      true,
      "Attach and detach volumes of running instances at once: the agent mounts the volume into the container's mount namespace (open_tree and move_mount, through /usr/bin/python3; Linux 5.2 or later) and again after every start of the container, until a rebuild makes it part of the container's config. false: an attach or detach of an existing instance applies at its next rebuild.",
    ),
    max_size_gb: int(100, 'Largest volume, in GiB.', 1, 65536),
    max_total_gb: int(
      0,
      'Sum of the sizes of every volume on this host, in GiB: a create beyond it is VOLUME_QUOTA_EXCEEDED. 0: no limit (the files are sparse; the host disk may then fill up before the volumes do).',
      0,
      1 << 30,
    ),
  },
} as const satisfies Record<string, Record<string, OptionSpec>>;
