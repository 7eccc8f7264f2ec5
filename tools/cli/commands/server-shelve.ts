import type { Command } from 'commander';
import { BerthError } from '../../../common/errors.js';
import { imageDict, instanceRequest, requestContext, shelveInstance, shelveOffloadInstance, unshelveInstance } from '../../lib/nova-requests.js';
import type { CliContext } from '../context.js';
import { spinner } from '../output.js';
import { WaitTimeout } from '../wait-timeout.js';
import { timeoutOption, type Run } from './server-args.js';
import { resolveServer, showInstance, type ServerView } from './server-lookup.js';
import { checkState, primitiveOf, printInstance } from './server-view.js';
import { refuseLocalVolumes } from './volume-moves.js';

const POLL_MS = 500;

/** The instance primitive nova would send now, with its system_metadata and state. */
function primitiveNow(view: ServerView, vm_state: string, task_state: string | null, host: string | null): Record<string, unknown> {
  const p = primitiveOf({ ...view, vm_state, task_state });
  const data = p['nova_object.data'] as Record<string, unknown>;
  Object.assign(data, { host, node: host, system_metadata: (view.system_metadata as Record<string, string> | undefined) ?? {} });
  return p;
}

/**
 * Waits until `done` holds for the instance, polling the node (nova sends no `.error`
 * notification for a shelve or an unshelve, so a failure shows as a new instance action in Error).
 * Returns the last view, and whether an action failed.
 */
async function waitFor(
  ctx: CliContext,
  uuid: string,
  actionsBefore: number,
  done: (v: ServerView) => boolean,
  timeoutS: number,
  what: string,
): Promise<{ view: ServerView; failed: boolean }> {
  const spin = spinner(`waiting for ${what} of ${uuid}`);
  const deadline = Date.now() + timeoutS * 1000;
  try {
    for (;;) {
      // A node that never had the instance knows it once the unshelve arrives there.
      const view = await showInstance(ctx, uuid).catch((err: unknown) => {
        if (err instanceof Error && /InstanceNotFound/.test(`${err.name} ${(err as { failureClass?: string }).failureClass ?? ''} ${err.message}`)) return null;
        throw err;
      });
      if (view === null) {
        if (Date.now() > deadline) throw new WaitTimeout(`timed out after ${timeoutS}s waiting for ${what} of ${uuid}; the node has no record of it yet`);
        await new Promise((r) => setTimeout(r, POLL_MS));
        continue;
      }
      const actions = ((view.actions as { result: string | null }[] | undefined) ?? []).slice(actionsBefore);
      if (actions.some((a) => a.result === 'Error')) return { view, failed: true };
      if (done(view)) return { view, failed: false };
      if (Date.now() > deadline) {
        throw new WaitTimeout(
          `timed out after ${timeoutS}s waiting for ${what} of ${uuid}; last state seen: ${view.vm_state}${view.task_state ? ` (${view.task_state})` : ''}`,
        );
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  } finally {
    spin.stop();
  }
}

const actionCount = (v: ServerView) => ((v.actions as unknown[] | undefined) ?? []).length;

/** Sends `msg` to `ctx`'s node; with `wait`, polls until `done`; prints the instance; exit 1 on a failed action. */
async function sendAndWait(
  ctx: CliContext,
  view: ServerView,
  msg: Record<string, unknown>,
  wait: { on: boolean; timeout: number; what: string; done: (v: ServerView) => boolean },
): Promise<ServerView> {
  const rpc = await ctx.rpcClient();
  await rpc.cast(ctx.computeKey, msg);
  if (!wait.on) return showInstance(ctx, view.uuid);
  const { view: now, failed } = await waitFor(ctx, view.uuid, actionCount(view), wait.done, wait.timeout, wait.what);
  if (failed) process.exitCode = 1;
  return now;
}

/**
 * `berth server shelve` and `berth server unshelve` (python-openstackclient's `server shelve
 * [--offload]` and `server unshelve [--host]`): the messages nova-api and nova's conductor send.
 * shelve: the `<name>-shelved` snapshot image is created first, then shelve_instance; with
 * --offload, shelve_offload_instance once the instance is shelved (the node offloads by itself
 * when its [compute] shelved_offload_time is 0). unshelve: a shelved instance still on its node is
 * started (start_instance, as the conductor does); an offloaded one is sent unshelve_instance with
 * its snapshot on the node chosen by the global --host (the scheduler's choice in a cloud).
 */
export function registerShelve(server: Command, run: Run): void {
  server
    .command('shelve <server>')
    .description("shelve an instance: snapshot it, stop it and (with --offload, or the node's shelved_offload_time 0) remove it from its node")
    .option('--offload', 'remove the shelved instance from its node (shelve_offload_instance) once shelved')
    .option('--wait', 'wait until the instance is shelved (or offloaded with --offload)')
    .option(...timeoutOption(1800))
    .action((ref: string, o) =>
      run(async (ctx) => {
        const view = await resolveServer(ctx, ref);
        checkState(view, 'shelve', 'shelve');
        if (o.offload) await refuseLocalVolumes(ctx, view, view.host, 'shelve_offload');
        // Like nova-api: the snapshot image exists (queued) before the node is asked to fill it.
        const image = await ctx.nodeImages().createImage({
          name: `${view.name}-shelved`,
          container_format: 'docker',
          disk_format: 'raw',
          visibility: 'private',
          image_type: 'snapshot',
          instance_uuid: view.uuid,
          base_image_ref: view.image,
        });
        const ctxArgs = requestContext(view.project_id);
        const shelvedOrGone = (v: ServerView) => (v.vm_state === 'shelved' || v.vm_state === 'shelved_offloaded') && v.task_state === null;
        let now = await sendAndWait(ctx, view, shelveInstance(primitiveNow(view, view.vm_state, 'shelving', view.host), image.id, ctxArgs), {
          on: o.wait || o.offload,
          timeout: o.timeout,
          what: 'the shelve',
          done: shelvedOrGone,
        });
        if (o.offload && process.exitCode !== 1 && now.vm_state === 'shelved') {
          now = await sendAndWait(ctx, now, shelveOffloadInstance(primitiveNow(now, 'shelved', 'shelving_offloading', now.host), ctxArgs), {
            on: Boolean(o.wait),
            timeout: o.timeout,
            what: 'the offload',
            done: (v) => v.vm_state === 'shelved_offloaded' && v.task_state === null,
          });
        }
        printInstance(ctx, now);
      }),
    );

  server
    .command('unshelve <server>')
    .description('unshelve an instance: start it again where it is, or boot its snapshot on the node given by the global --host')
    .option('--wait', 'wait until the instance is active (or the unshelve failed)')
    .option(...timeoutOption(600))
    .action((ref: string, o) =>
      run(async (ctx) => {
        const view = await resolveServer(ctx, ref);
        const ctxArgs = requestContext(view.project_id);
        const active = (v: ServerView) => v.vm_state === 'active' && v.task_state === null;
        const wait = { on: Boolean(o.wait), timeout: o.timeout, what: 'the unshelve', done: active };
        if (view.vm_state === 'shelved') {
          // Not offloaded: nova's conductor starts it on its own node.
          if (view.host !== ctx.host)
            throw new BerthError('INSTANCE_INVALID_STATE', `${view.uuid} is shelved on ${view.host}, not offloaded: it unshelves there`, { status: 409 });
          checkState(view, 'start_shelved', 'unshelve');
          printInstance(
            ctx,
            await sendAndWait(ctx, view, instanceRequest('start_instance', primitiveNow(view, 'shelved', 'powering-on', view.host), {}, ctxArgs), wait),
          );
          return;
        }
        checkState(view, 'unshelve', 'unshelve');
        const imageId = (view.system_metadata as Record<string, string> | undefined)?.shelved_image_id;
        const image = imageId ? await ctx.nodeImages().getImage(imageId) : null;
        // nova's conductor refuses an unshelve whose snapshot is gone (UnshelveException).
        if (!image)
          throw new BerthError('IMAGE_NOT_FOUND', `cannot unshelve ${view.uuid}: its shelved image ${imageId ?? '(none recorded)'} cannot be found`, {
            status: 404,
          });
        const msg = unshelveInstance(primitiveNow(view, 'shelved_offloaded', 'unshelving', null), imageDict(image), ctx.host, ctxArgs);
        const now = await sendAndWait(ctx, view, msg, wait);
        printInstance(ctx, now);
      }),
    );
}
