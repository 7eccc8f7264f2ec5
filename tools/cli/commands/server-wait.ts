import type { CliContext } from '../context.js';
import { spinner } from '../output.js';
import { WaitTimeout } from '../wait-timeout.js';
import { showInstance } from './server-lookup.js';

/**
 * Waits for `instance.<event>.end` or `.error` of one instance; for an action of several steps
 * (a list of events), the last one's `.end` or any one's `.error`.
 */
export async function waitForEvent(
  ctx: CliContext,
  uuid: string,
  steps: string | readonly string[],
  timeoutS: number,
  send: () => Promise<void>,
): Promise<'end' | 'error'> {
  const all = typeof steps === 'string' ? [steps] : steps;
  const event = all.at(-1)!;
  const rpc = await ctx.rpcClient();
  const spin = spinner(`waiting for ${event} of ${uuid}`);
  let lastEvent = '';
  const expired = async () => {
    // The state the node reports now, else the last notification seen.
    const now = await showInstance(ctx, uuid).then(
      (v) => `${v.vm_state}${v.task_state ? ` (${v.task_state})` : ''}`,
      () => '',
    );
    const last = now ? `last state seen: ${now}` : lastEvent ? `last notification seen: ${lastEvent}` : 'no notification seen';
    return new WaitTimeout(`timed out after ${timeoutS}s waiting for instance.${event}.end of ${uuid}; ${last}`);
  };
  const outcome = new Promise<'end' | 'error'>((resolve, reject) => {
    const t = setTimeout(() => {
      expired().then(reject, reject);
    }, timeoutS * 1000);
    rpc.onEvent((type, msg) => {
      const data = (msg.payload as { 'nova_object.data'?: { uuid?: string } } | undefined)?.['nova_object.data'];
      if (data?.uuid !== uuid) return;
      lastEvent = type;
      if (type === `instance.${event}.start`) spin.update(`${event} started`);
      if (type === `instance.${event}.end`) {
        clearTimeout(t);
        resolve('end');
      }
      if (all.some((e) => type === `instance.${e}.error`)) {
        clearTimeout(t);
        resolve('error');
      }
    });
  });
  await send();
  try {
    const r = await outcome;
    spin.stop();
    return r;
  } catch (err) {
    spin.stop();
    throw err;
  }
}
