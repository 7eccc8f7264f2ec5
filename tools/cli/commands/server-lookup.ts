import { isUuid } from '../../../common/koa.js';
import type { GlanceImage } from '../../../glance-bridge/client/types.js';
import type { InstanceView } from '../../../driver/compute/berth-endpoint.js';
import type { CliContext } from '../context.js';
import { UsageError } from '../context.js';

export type ServerView = InstanceView & Record<string, unknown>;

/** An image by Glance id, by name, or by registry reference (imported first; matched by digest). */
export async function resolveImage(ctx: CliContext, ref: string): Promise<GlanceImage> {
  const images = ctx.nodeImages();
  if (isUuid(ref as unknown)) {
    const img = await images.getImage(ref);
    if (!img) throw new UsageError(`no image with id ${ref}`);
    return img;
  }
  if (ref.startsWith('docker://')) return images.importImage(ref);
  const byName = (await images.listImages({ name: ref })).filter((i) => i.status === 'active');
  if (byName.length > 1) throw new UsageError(`${byName.length} images are named ${JSON.stringify(ref)}: use an id`);
  if (byName.length === 0 && ref.includes('/')) return images.importImage(`docker://${ref}`);
  if (byName.length === 0) throw new UsageError(`no active image named ${JSON.stringify(ref)} (try \`berth image list\`)`);
  return byName[0]!;
}

export async function showInstance(ctx: CliContext, uuid: string, host = ctx.host): Promise<InstanceView & Record<string, unknown>> {
  const rpc = await ctx.rpcClient();
  return rpc.call(`compute.${host}`, { method: 'show_instance', namespace: 'berth', version: '1.0', args: { uuid } }, ctx.config.DEFAULT.rpc_response_timeout);
}

/** An instance by uuid or by name (a name must be unique on the node). */
export async function resolveServer(ctx: CliContext, ref: string, host = ctx.host): Promise<ServerView> {
  if (isUuid(ref)) return showInstance(ctx, ref.toLowerCase(), host);
  const rpc = await ctx.rpcClient();
  const all = await rpc.call<InstanceView[]>(
    `compute.${host}`,
    { method: 'list_instances', namespace: 'berth', version: '1.0', args: { all: false } },
    ctx.config.DEFAULT.rpc_response_timeout,
  );
  const named = all.filter((i) => i.name === ref);
  // As for images (resolveImage): a name that matches nothing, or several, is bad usage (exit 2).
  if (named.length > 1) throw new UsageError(`${named.length} instances are named ${JSON.stringify(ref)} on ${host}: use an id`);
  if (!named.length) throw new UsageError(`no instance with a name or id of ${JSON.stringify(ref)} on ${host}`);
  return showInstance(ctx, named[0]!.uuid, host);
}

/**
 * Runs `fn` for each of several instances (or images) named on the command line, on after a
 * failure: each failure is one line on stderr, and the exit code is 1 if any failed.
 */
export async function forEach<T>(refs: string[], fn: (ref: string) => Promise<T>): Promise<T[]> {
  const done: T[] = [];
  let failed = 0;
  for (const ref of refs) {
    try {
      done.push(await fn(ref));
    } catch (err) {
      // With a single one, the error is the command's own (its exit code, 2 or 3 included).
      if (refs.length === 1) throw err;
      failed++;
      process.stderr.write(`berth: ${ref}: ${(err as Error).message}\n`);
    }
  }
  if (failed) process.exitCode = 1;
  return done;
}
