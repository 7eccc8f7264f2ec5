import type { Volume } from '../../agent/client/volumes.js';
import { BerthError } from '../../common/errors.js';
import type { InstanceRow } from '../db/models.js';
import { driverError } from '../errors.js';
import type { NovaExtras } from '../notify/payload.js';

/**
 * The local volumes of this node's agent (`berth volume`, docs/volumes.md), as far as moves need
 * them: the agent's volumes API (`VolumeClient.list`, every project's).
 */
export interface LocalVolumeSource {
  list(): Promise<Volume[]>;
}

/** A volume attached to an instance: bound by its container, or to be bound by its next one. */
export interface AttachedVolume {
  id: string;
  name: string;
  mount_point: string;
}

/** The moves a local volume cannot follow: the instance leaves the host its volumes stay on. */
export type VolumeMove = 'shelve_offload' | 'resize' | 'migrate';

const MOVE_WORDS: Record<VolumeMove, string> = {
  shelve_offload: 'be shelved and offloaded',
  resize: 'be resized to another host',
  migrate: 'be migrated to another host',
};

/**
 * system_metadata key under which the instance's host mirrors its attached local volumes
 * (VolumeMirror), so that a node the instance would move to sees them without that host: an
 * evacuation's destination (the host is down), a move's destination before its claim.
 */
export const LOCAL_VOLUMES_KEY = 'berth_local_volumes';
/** nova keeps a system_metadata value in 255 characters. */
const SYSMETA_MAX = 255;

/**
 * Every volume of the node's agent; none when it has no volumes API (`[volumes] enabled` off: 404).
 * Any other failure is thrown: a move is not let through because the agent could not be asked.
 */
export async function volumesOnHost(source: LocalVolumeSource | undefined): Promise<Volume[]> {
  if (!source) return [];
  try {
    return await source.list();
  } catch (err) {
    if (err instanceof BerthError && err.status === 404) return [];
    throw err;
  }
}

/** The volumes attached to `uuid`: reserved or in use. A detaching one leaves with the container, so a move loses nothing. */
export function attachedTo(volumes: Volume[], uuid: string): AttachedVolume[] {
  return volumes
    .filter((v) => v.attachment?.instance_uuid === uuid && v.status !== 'detaching')
    .map((v) => ({ id: v.id, name: v.name, mount_point: v.attachment!.mount_point }))
    .sort((a, b) => a.mount_point.localeCompare(b.mount_point));
}

/** How the volumes are named in a refusal and in the mirrored system_metadata. */
function describe(volumes: AttachedVolume[]): string {
  return volumes.map((v) => `${v.name} (${v.id}) at ${v.mount_point}`).join(', ');
}

/** The typed refusal: the move would leave the volumes behind, attached to an instance that left. */
export function localVolumesRefusal(uuid: string, move: VolumeMove, named: string, ids: string[] = []): BerthError {
  return driverError(
    'LOCAL_VOLUMES_ATTACHED',
    `Instance ${uuid} cannot ${MOVE_WORDS[move]} with local volumes attached, which stay on their host: ` +
      `detach them first (berth server volume detach SERVER VOLUME). Attached: ${named}`,
    { instance_uuid: uuid, move, volumes: ids },
  );
}

/** Refuses `move` of `uuid` when this node's agent has local volumes attached to it. */
export async function refuseMoveWithVolumes(source: LocalVolumeSource | undefined, uuid: string, move: VolumeMove): Promise<void> {
  const attached = attachedTo(await volumesOnHost(source), uuid);
  if (attached.length)
    throw localVolumesRefusal(
      uuid,
      move,
      describe(attached),
      attached.map((v) => v.id),
    );
}

/** The mirrored value for `volumes` (null: none), within nova's limit. */
export function volumesSysmeta(volumes: AttachedVolume[]): string | null {
  if (!volumes.length) return null;
  const text = describe(volumes);
  return text.length <= SYSMETA_MAX ? text : `${text.slice(0, SYSMETA_MAX - 1)}…`;
}

/** The mirrored volumes of a system_metadata dict (a nova Instance primitive's, or a record's). */
export function mirroredVolumes(sysmeta: unknown): string | null {
  if (typeof sysmeta !== 'object' || sysmeta === null) return null;
  const v = (sysmeta as Record<string, unknown>)[LOCAL_VOLUMES_KEY];
  return typeof v === 'string' && v !== '' ? v : null;
}

/** The system_metadata of a nova Instance primitive. */
export function sysmetaOfPrimitive(primitive: unknown): unknown {
  return (primitive as { 'nova_object.data'?: { system_metadata?: unknown } } | null)?.['nova_object.data']?.system_metadata;
}

/** The system_metadata of this node's record. */
export function sysmetaOfRow(row: InstanceRow | null | undefined): Record<string, string> {
  return row ? ((JSON.parse(row.nova) as NovaExtras).system_metadata ?? {}) : {};
}

/**
 * Refuses `move` when the instance's host mirrored attached volumes (a destination's check, which
 * cannot ask that host's agent): in the record this node shares, or in nova's instance.
 */
export function refuseByMirror(uuid: string, move: VolumeMove, ...sysmetas: unknown[]): void {
  const named = mirroredOf(...sysmetas);
  if (named) throw localVolumesRefusal(uuid, move, named);
}

/** The first of `sysmetas` (records, nova primitives' system_metadata) naming mirrored volumes. */
export function mirroredOf(...sysmetas: unknown[]): string | null {
  for (const sm of sysmetas) {
    const named = mirroredVolumes(sm);
    if (named) return named;
  }
  return null;
}
