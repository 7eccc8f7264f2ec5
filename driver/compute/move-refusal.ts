import { describeError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { RequestContext } from '../rpc/envelope.js';
import type { ControlPlane } from './control-plane.js';
import { faultOf } from './lifecycle.js';
import { refuseByMirror, sysmetaOfPrimitive, sysmetaOfRow } from './local-volumes.js';
import type { MoveRequest } from './migrate.js';
import type { MigrationArg } from './resize.js';
import type { InstanceStore } from './store.js';

export interface MoveRefusalDeps {
  store: Pick<InstanceStore, 'get' | 'addFault'>;
  plane: Pick<ControlPlane, 'saveMigration' | 'revertMoveAllocations' | 'addFault' | 'saveInstance'>;
  log: Logger;
}

/**
 * prep_resize on a destination, before its claim: an instance whose host mirrored attached local
 * volumes (in nova's instance, or in the record the nodes share) is refused, as nova's prep_resize
 * refuses a move early (InstanceFaultRollback): the migration `error`, the allocations given back
 * to the instance, a fault, the task cleared and the vm_state kept. The instance's host checks its
 * agent again in resize_instance, which catches what the mirror has not caught up with yet.
 */
export async function refuseMirroredVolumes(
  d: MoveRefusalDeps,
  ctx: RequestContext,
  instance: MoveRequest['instance'],
  migration: MigrationArg,
): Promise<void> {
  const uuid = instance.uuid;
  const row = await d.store.get(uuid);
  try {
    refuseByMirror(uuid, migration.migration_type === 'resize' ? 'resize' : 'migrate', sysmetaOfPrimitive(instance.primitive), sysmetaOfRow(row));
  } catch (err) {
    const warn = (what: string) => (e: unknown) => d.log.warn({ instance: uuid, err: describeError(e) }, what);
    const fault = faultOf(err);
    await d.plane.saveMigration(ctx, { uuid: migration.uuid, nova: migration.primitive }, 'error').catch(warn('could not mark the migration failed'));
    await d.plane.revertMoveAllocations(ctx, migration.uuid, uuid).catch(warn('could not give the allocations back to the instance'));
    if (row && !row.deleted) await d.store.addFault(uuid, fault.code, fault.message, fault.exception);
    await d.plane.addFault(ctx, uuid, fault).catch(warn('could not record the fault'));
    await d.plane
      .saveInstance(ctx, uuid, { vm_state: instance.vm_state, task_state: null }, ['resize_prep', null])
      .catch(warn('could not clear the task state'));
    throw err;
  }
}
