import type { InstanceRow, TaskState, VmState } from '../db/models.js';
import type { MigrationArg } from './resize.js';
import { novaError } from '../rpc/failure.js';
import type { MovedRecord } from './store.js';

/**
 * What finish_resize's `disk_info` carries between two Berth nodes (nova leaves that string to the
 * virt driver: libvirt's is its disks' description). Here: the image store's image holding the
 * instance's filesystem, the bytes the source sent, and the source's record of the instance, from
 * which the destination makes its own.
 */
export interface Carried {
  berth_move: { image_id: string; bytes: number; omitted_bytes: number | null; record: MovedRecord };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function movedRecordOf(row: InstanceRow): MovedRecord {
  return {
    uuid: row.uuid,
    display_name: row.display_name,
    hostname: row.hostname,
    project_id: row.project_id,
    user_id: row.user_id,
    image_ref: row.image_ref,
    flavor: JSON.parse(row.flavor) as unknown,
    spec: JSON.parse(row.spec) as unknown,
    nova: row.nova ? (JSON.parse(row.nova) as unknown) : null,
    vm_state: row.vm_state,
    task_state: row.task_state,
    power_state: row.power_state,
    launched_at: row.launched_at,
  };
}

/** The move's image, bytes and record out of disk_info; MigrationError when it is not a Berth node's. */
export function carriedOf(diskInfo: unknown): Carried['berth_move'] & { record: MovedRecord } {
  const refuse = (why: string) =>
    novaError('MigrationError', 400, `Migration error: finish_resize's disk_info ${why}; the source must be a Berth node.`, { reason: why });
  let doc: unknown;
  try {
    doc = typeof diskInfo === 'string' ? JSON.parse(diskInfo) : diskInfo;
  } catch {
    throw refuse('is not JSON');
  }
  const move = (doc as Partial<Carried> | null)?.berth_move;
  if (!move || typeof move !== 'object') throw refuse('carries no berth_move');
  if (typeof move.image_id !== 'string' || !UUID.test(move.image_id)) throw refuse('names no image');
  if (typeof move.bytes !== 'number' || !(move.bytes >= 0)) throw refuse('gives no byte count');
  const r = move.record as Partial<MovedRecord> | undefined;
  if (!r || typeof r.uuid !== 'string' || typeof r.project_id !== 'string' || typeof r.spec !== 'object' || r.spec === null)
    throw refuse('carries no instance record');
  return {
    image_id: move.image_id,
    bytes: move.bytes,
    omitted_bytes: typeof move.omitted_bytes === 'number' ? move.omitted_bytes : null,
    record: {
      uuid: r.uuid,
      display_name: String(r.display_name ?? ''),
      hostname: String(r.hostname ?? ''),
      project_id: r.project_id,
      user_id: String(r.user_id ?? ''),
      image_ref: String(r.image_ref ?? ''),
      flavor: r.flavor ?? null,
      spec: r.spec,
      nova: r.nova ?? null,
      vm_state: (r.vm_state ?? 'active') as VmState,
      task_state: (r.task_state ?? null) as TaskState | null,
      power_state: typeof r.power_state === 'number' ? r.power_state : 0,
      launched_at: r.launched_at ? new Date(r.launched_at) : null,
    },
  };
}

/** The migration primitive with the destination filled in, as nova's resize claim does. */
export function withDestination(primitive: unknown, host: string, node: string): unknown {
  const p = primitive as { 'nova_object.data'?: Record<string, unknown> } | null;
  if (!p?.['nova_object.data']) return primitive;
  return { ...p, 'nova_object.data': { ...p['nova_object.data'], dest_compute: host, dest_node: node, dest_host: null } };
}

/** The destination's node as its prep_resize named it on the Migration. */
export function destNodeOf(migration: MigrationArg): string | null {
  const d = (migration.primitive as { 'nova_object.data'?: { dest_node?: unknown } } | null)?.['nova_object.data']?.dest_node;
  return typeof d === 'string' && d ? d : null;
}

/** The instance's flavor before the move: nova's Flavor primitive, as the message's instance carries it. */
export function oldFlavorOf(primitive: unknown, row: InstanceRow): unknown {
  const f = (primitive as { 'nova_object.data'?: { flavor?: unknown } } | null)?.['nova_object.data']?.flavor;
  if (!f) throw novaError('MigrationError', 400, `Migration error: the request carries no flavor of instance ${row.uuid}.`);
  return f;
}
