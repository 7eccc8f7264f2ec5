import { BerthError } from '../../../common/errors.js';
import { migrationPrimitive, prepResize, requestContext } from '../../lib/nova-requests.js';
import { UsageError, type CliContext } from '../context.js';
import { resolveServer, type ServerView } from './server-lookup.js';
import { primitiveOf } from './server-view.js';

/** The steps of a move as their notifications name them: resize_finish ends it (on the destination). */
export const MOVE_STEPS = ['resize_prep', 'resize', 'resize_finish'] as const;

/** An instance and the node that has it. */
export interface Located {
  view: ServerView;
  host: string;
}

const notHere = (err: unknown): boolean => err instanceof UsageError || (err instanceof BerthError && err.status === 404);

/**
 * Finds an instance for a move: on `--from` when given; else on the node `--host` names and then
 * on this node's own `[DEFAULT] host` (`berth server migrate web --host TARGET` names the
 * destination, as `openstack server migrate --host` does, while the instance is on this node).
 */
export async function locate(ctx: CliContext, ref: string, from?: string): Promise<Located> {
  const hosts = from ? [from] : [...new Set([ctx.host, ctx.config.DEFAULT.host])];
  let last: unknown = null;
  for (const host of hosts) {
    try {
      return { view: await resolveServer(ctx, ref, host), host };
    } catch (err) {
      if (!notHere(err)) throw err;
      last = err;
    }
  }
  throw last instanceof UsageError ? last : new UsageError(`no instance ${JSON.stringify(ref)} on ${hosts.join(' or ')}`);
}

/**
 * The conductor's message for a move of `at` to another node: prep_resize to the destination,
 * with a Migration from the instance's node to it (nova/conductor/tasks/migrate.py). The
 * destination casts resize_instance to the source, which casts finish_resize back.
 */
export function movePrepResize(at: Located, dest: string, flavor: Record<string, unknown>, type: 'resize' | 'migration'): Record<string, unknown> {
  const migration = migrationPrimitive({ instance_uuid: at.view.uuid, host: at.host, dest, migration_type: type });
  return prepResize(primitiveOf(at.view), flavor, migration, dest, requestContext(at.view.project_id));
}

/** The node a decision on the instance's finished move goes to: confirm to the source, revert to the destination (nova-api's). */
export function decisionHost(view: ServerView, at: string, method: 'confirm_resize' | 'revert_resize'): string {
  const m = view.migration as { source_compute?: string; dest_compute?: string } | null | undefined;
  const host = method === 'confirm_resize' ? m?.source_compute : m?.dest_compute;
  return host || at;
}
