import type { Command } from 'commander';
import { BerthError } from '../../../common/errors.js';
import { isUuid } from '../../../common/koa.js';
import type { InstanceView } from '../../../driver/compute/berth-endpoint.js';
import { evacuateInstance, migrationPrimitive, requestContext } from '../../lib/nova-requests.js';
import { UsageError, type CliContext } from '../context.js';
import { timeoutOption, type Run } from './server-args.js';
import type { ServerView } from './server-lookup.js';
import { checkState, primitiveOf, printInstance } from './server-view.js';
import { waitForEvent } from './server-wait.js';
import { mirroredVolumes } from '../../../driver/compute/local-volumes.js';

/** How long a node has to answer a ping before it counts as down. */
const PING_TIMEOUT_S = 3;

type Capacity = { resources: Record<string, { free: number }> };

async function call<T>(ctx: CliContext, host: string, method: string, args: Record<string, unknown>, version = '1.0', timeout?: number): Promise<T> {
  const rpc = await ctx.rpcClient();
  const namespace = method === 'ping' ? 'baseapi' : 'berth';
  return rpc.call<T>(`compute.${host}`, { method, namespace, version, args }, timeout ?? ctx.config.DEFAULT.rpc_response_timeout);
}

/** Whether the compute service of `host` answers (nova-api's servicegroup check before an evacuation). */
async function isUp(ctx: CliContext, host: string): Promise<boolean> {
  return call(ctx, host, 'ping', { arg: 'evacuate' }, '1.0', PING_TIMEOUT_S).then(
    () => true,
    () => false,
  );
}

/** The instance by id or name, as a node on the shared database knows it (its host may be down). */
async function lookup(ctx: CliContext, via: string, ref: string): Promise<ServerView> {
  let uuid = ref.toLowerCase();
  if (!isUuid(ref)) {
    const all = await call<InstanceView[]>(ctx, via, 'list_instances', { all: false, all_hosts: true }, '1.2');
    const named = all.filter((i) => i.name === ref);
    if (named.length > 1) throw new UsageError(`${named.length} instances are named ${JSON.stringify(ref)}: use an id`);
    if (!named.length) throw new UsageError(`no instance with a name or id of ${JSON.stringify(ref)} known to ${via}`);
    uuid = named[0]!.uuid;
  }
  return call<ServerView>(ctx, via, 'show_instance', { uuid });
}

/**
 * The target when none is named (the scheduler's part): of [DEFAULT] compute_hosts other than the
 * source, the one that answers with the most free memory for the flavor.
 */
async function pickTarget(ctx: CliContext, source: string, memoryMb: number): Promise<string> {
  const hosts = ctx.config.DEFAULT.compute_hosts.filter((h) => h !== source);
  if (!hosts.length) throw new UsageError('no target: name one with --host, or list the nodes in [DEFAULT] compute_hosts');
  const free = await Promise.all(
    hosts.map((h) =>
      call<Capacity>(ctx, h, 'get_host_capacity', {}, '1.0', PING_TIMEOUT_S).then(
        (c) => c.resources.MEMORY_MB?.free ?? 0,
        () => -1,
      ),
    ),
  );
  const best = hosts
    .map((h, i) => ({ h, free: free[i]! }))
    .filter((c) => c.free >= memoryMb)
    .sort((a, b) => b.free - a.free)[0];
  if (!best)
    throw new BerthError('NO_VALID_HOST', `no node of [DEFAULT] compute_hosts (${hosts.join(', ')}) answers with ${memoryMb} MB free`, { status: 409 });
  return best.h;
}

/**
 * `berth server evacuate` (python-openstackclient's `server evacuate`): what nova-api and the
 * conductor send to rebuild an instance of a node that is down on another node: refused while the
 * instance's node answers (nova's ComputeServiceInUse), an `accepted` evacuation migration, and
 * rebuild_instance with recreate=True cast to the target. Needs nodes on one database: the target
 * finds the instance's record there. The old node removes its leftover container when it starts.
 */
export function registerEvacuate(server: Command, run: Run): void {
  server
    .command('evacuate <server>')
    .description(
      'rebuild an instance of a node that is down on another node (rebuild_instance with recreate); the target is --host, else the node of [DEFAULT] compute_hosts with the most free memory',
    )
    .option('--wait', 'wait until the instance is active on the target (or failed)')
    .option(...timeoutOption(300))
    .action((ref: string, o: { wait?: boolean; timeout: number }) =>
      run(async (ctx) => {
        const named = ctx.opts.host;
        let via = named;
        if (!via) {
          for (const h of [ctx.config.DEFAULT.host, ...ctx.config.DEFAULT.compute_hosts]) if (!via && (await isUp(ctx, h))) via = h;
          if (!via) throw new BerthError('SERVICE_UNREACHABLE', 'no compute node answers: name the target with --host', { status: 503 });
        }
        const view = await lookup(ctx, via, ref);
        const source = view.host;
        if (named === source) throw new UsageError(`instance ${view.uuid} is on ${source} already: the target must be another node`);
        checkState(view, 'evacuate', 'evacuate');
        if (await isUp(ctx, source)) {
          throw new BerthError(
            'COMPUTE_SERVICE_IN_USE',
            `the compute service of ${source} still answers: an instance is evacuated only from a node that is down`,
            {
              status: 409,
            },
          );
        }
        // As an evacuation without shared storage loses the local disk: the volumes stay on the node that is down.
        const left = mirroredVolumes(view.system_metadata);
        if (left)
          process.stderr.write(`berth: warning: local volumes stay on ${source} (detached when it returns); ${view.uuid} starts without them: ${left}\n`);
        const flavor = view.flavor as { memory_mb: number };
        const target = named ?? (await pickTarget(ctx, source, flavor.memory_mb));
        const migration = migrationPrimitive({ instance_uuid: view.uuid, host: source, dest: named ?? null, migration_type: 'evacuation', status: 'accepted' });
        const inst = primitiveOf({ ...view, task_state: 'rebuilding' });
        const msg = evacuateInstance(inst, migration, { scheduledNode: named ? null : target }, requestContext(view.project_id));
        const rpc = await ctx.rpcClient();
        const send = () => rpc.cast(`compute.${target}`, msg);
        if (o.wait) {
          if ((await waitForEvent(ctx, view.uuid, 'rebuild', o.timeout, send)) === 'error') process.exitCode = 1;
        } else await send();
        printInstance(ctx, await call<ServerView>(ctx, target, 'show_instance', { uuid: view.uuid }));
      }),
    );
}
