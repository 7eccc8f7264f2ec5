import type { Command } from 'commander';
import { BerthError } from '../../../common/errors.js';
import { flavorPrimitive, migrationPrimitive, prepResize, requestContext, resizeDecision, type FlavorInput } from '../../lib/nova-requests.js';
import { UsageError, type CliContext } from '../context.js';
import { addFlavorOptions, chosenFlavor } from './flavor-args.js';
import { timeoutOption, type Run } from './server-args.js';
import { showInstance, type ServerView } from './server-lookup.js';
import { decisionHost, locate, MOVE_STEPS, movePrepResize } from './server-move.js';
import { refuseLocalVolumes } from './volume-moves.js';
import { checkState, primitiveOf, printInstance } from './server-view.js';
import { waitForEvent } from './server-wait.js';

/** The steps of a resize as their notifications name them (one message runs them all on one host; a move to another node ends with resize_finish too). */
const RESIZE_STEPS = MOVE_STEPS;

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
export async function send(
  ctx: CliContext,
  view: ServerView,
  msg: Record<string, unknown>,
  o: { wait?: boolean; timeout: number },
  steps: string | readonly string[],
  to: { send: string; show: string; else?: string } = { send: ctx.host, show: ctx.host },
) {
  const rpc = await ctx.rpcClient();
  const cast = () => rpc.cast(`compute.${to.send}`, msg);
  if (o.wait) {
    if ((await waitForEvent(ctx, view.uuid, steps, o.timeout, cast)) === 'error') process.exitCode = 1;
  } else await cast();
  // A move without --wait may still be under way: the instance is shown where it is now.
  printInstance(
    ctx,
    await showInstance(ctx, view.uuid, to.show).catch((err: unknown) => (to.else ? showInstance(ctx, view.uuid, to.else) : Promise.reject(err))),
  );
}

/**
 * `berth server resize`, `migrate`, `resize-confirm` and `resize-revert` (python-openstackclient's
 * `server resize`, `server migrate --host`, `server resize confirm|revert`): the messages nova-api
 * and the conductor send (prep_resize to the destination, then confirm_resize to the source or
 * revert_resize to the destination), on the instance's own host or to another node.
 */
export function registerResize(server: Command, run: Run): void {
  addFlavorOptions(
    server
      .command('resize <server>')
      .description(
        'resize an instance to a new flavor (prep_resize): in place, or on the node --host names when the instance is on another (--from, default this node); confirm or revert it afterwards',
      ),
  )
    .option('--flavor-name <name>', 'name of the new flavor given by its sizes')
    .option('--from <node>', 'the node the instance is on, for a resize onto the node --host names')
    .option('--wait', 'wait until the instance is resized (VERIFY_RESIZE) or failed')
    .option(...timeoutOption(300))
    .action((ref: string, o) =>
      run(async (ctx) => {
        const chosen = chosenFlavor(ctx.config, o);
        if (o.flavorName !== undefined && o.flavor !== undefined) throw new UsageError('--flavor-name names sizes given one by one, not --flavor NAME');
        const at = await locate(ctx, ref, o.from);
        const { view } = at;
        checkState(view, 'resize_prep', 'resize');
        const flavor = flavorPrimitive({ ...chosen, ...(o.flavorName ? { name: o.flavorName } : {}) });
        if (at.host !== ctx.host) {
          await refuseLocalVolumes(ctx, view, at.host, 'resize');
          await send(ctx, view, movePrepResize(at, ctx.host, flavor, 'resize'), o, RESIZE_STEPS, { send: ctx.host, show: ctx.host, else: at.host });
          return;
        }
        const migration = migrationPrimitive({ instance_uuid: view.uuid, host: ctx.host });
        await send(ctx, view, prepResize(primitiveOf(view), flavor, migration, ctx.host, requestContext(view.project_id)), o, RESIZE_STEPS);
      }),
    );
  server
    .command('migrate <server>')
    .description('cold-migrate an instance to the node --host names, with its flavor (prep_resize there); confirm or revert it afterwards')
    .option('--from <node>', 'the node the instance is on (default: this node, [DEFAULT] host)')
    .option('--wait', 'wait until the instance is on the new node (VERIFY_RESIZE) or failed')
    .option(...timeoutOption(300))
    .action((ref: string, o: { from?: string; wait?: boolean; timeout: number }) =>
      run(async (ctx) => {
        if (!ctx.opts.host) throw new UsageError('--host TARGET is required: a standalone node has no scheduler to pick one');
        const at = await locate(ctx, ref, o.from);
        if (at.host === ctx.host) throw new UsageError(`instance ${at.view.uuid} is on ${ctx.host} already`);
        checkState(at.view, 'resize_prep', 'migrate');
        await refuseLocalVolumes(ctx, at.view, at.host, 'migrate');
        const flavor = flavorPrimitive(at.view.flavor as FlavorInput);
        await send(ctx, at.view, movePrepResize(at, ctx.host, flavor, 'migration'), o, RESIZE_STEPS, { send: ctx.host, show: ctx.host, else: at.host });
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
          const { view, host } = await locate(ctx, ref);
          const m = pendingMigration(view, verb) as { uuid: string; source_compute?: string; dest_compute?: string };
          const source = m.source_compute || host;
          const migration = migrationPrimitive({ uuid: m.uuid, instance_uuid: view.uuid, host: source, dest: m.dest_compute || host, status: 'finished' });
          const to = decisionHost(view, host, method);
          await send(ctx, view, resizeDecision(method, primitiveOf(view), migration, requestContext(view.project_id)), o, event, {
            send: to,
            show: method === 'confirm_resize' ? host : source,
            else: host,
          });
        }),
      );
  }
}
