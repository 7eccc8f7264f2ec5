import type { Command } from 'commander';
import { BerthError } from '../../../common/errors.js';
import { flavorPrimitive, migrationPrimitive, prepResize, requestContext, resizeDecision } from '../../lib/nova-requests.js';
import { UsageError, type CliContext } from '../context.js';
import { addFlavorOptions, chosenFlavor } from './flavor-args.js';
import { timeoutOption, type Run } from './server-args.js';
import { resolveServer, showInstance, type ServerView } from './server-lookup.js';
import { checkState, primitiveOf, printInstance } from './server-view.js';
import { waitForEvent } from './server-wait.js';

/** The steps of a resize as their notifications name them (one message runs them all on a Berth node). */
const RESIZE_STEPS = ['resize_prep', 'resize', 'resize_finish'] as const;

/** The instance's open resize, waiting for a decision (nova's VERIFY_RESIZE). */
function pendingMigration(view: ServerView, verb: string): { uuid: string } {
  const m = view.migration as { uuid: string; status: string } | null | undefined;
  if (view.vm_state !== 'resized' || !m || m.status !== 'finished') {
    throw new BerthError('INSTANCE_INVALID_STATE', `cannot ${verb} the resize of ${view.uuid}: it is ${view.vm_state}, with no finished resize`, {
      status: 409,
    });
  }
  return m;
}

/** Sends `msg` for one instance, with --wait until `steps` end; prints the instance; exit 1 on an error notification. */
async function send(
  ctx: CliContext,
  view: ServerView,
  msg: Record<string, unknown>,
  o: { wait?: boolean; timeout: number },
  steps: string | readonly string[],
) {
  const rpc = await ctx.rpcClient();
  const cast = () => rpc.cast(ctx.computeKey, msg);
  if (o.wait) {
    if ((await waitForEvent(ctx, view.uuid, steps, o.timeout, cast)) === 'error') process.exitCode = 1;
  } else await cast();
  printInstance(ctx, await showInstance(ctx, view.uuid));
}

/**
 * `berth server resize`, `resize-confirm` and `resize-revert` (python-openstackclient's
 * `server resize`, `server resize confirm|revert`): the messages nova-api and the conductor send
 * for a resize on the instance's own host (prep_resize, then confirm_resize or revert_resize).
 */
export function registerResize(server: Command, run: Run): void {
  addFlavorOptions(server.command('resize <server>').description('resize an instance in place to a new flavor (prep_resize); confirm or revert it afterwards'))
    .option('--flavor-name <name>', 'name of the new flavor given by its sizes')
    .option('--wait', 'wait until the instance is resized (VERIFY_RESIZE) or failed')
    .option(...timeoutOption(300))
    .action((ref: string, o) =>
      run(async (ctx) => {
        const chosen = chosenFlavor(ctx.config, o);
        if (o.flavorName !== undefined && o.flavor !== undefined) throw new UsageError('--flavor-name names sizes given one by one, not --flavor NAME');
        const view = await resolveServer(ctx, ref);
        checkState(view, 'resize_prep', 'resize');
        const flavor = flavorPrimitive({ ...chosen, ...(o.flavorName ? { name: o.flavorName } : {}) });
        const migration = migrationPrimitive({ instance_uuid: view.uuid, host: ctx.host });
        await send(ctx, view, prepResize(primitiveOf(view), flavor, migration, ctx.host, requestContext(view.project_id)), o, RESIZE_STEPS);
      }),
    );
  for (const [verb, method, event] of [
    ['confirm', 'confirm_resize', 'resize_confirm'],
    ['revert', 'revert_resize', 'resize_revert'],
  ] as const) {
    server
      .command(`resize-${verb} <server>`)
      .description(`${verb} the finished resize of an instance (${method})`)
      .option('--wait', 'wait for the result')
      .option(...timeoutOption(120))
      .action((ref: string, o) =>
        run(async (ctx) => {
          const view = await resolveServer(ctx, ref);
          const m = pendingMigration(view, verb);
          const migration = migrationPrimitive({ uuid: m.uuid, instance_uuid: view.uuid, host: ctx.host, status: 'finished' });
          await send(ctx, view, resizeDecision(method, primitiveOf(view), migration, requestContext(view.project_id)), o, event);
        }),
      );
  }
}
