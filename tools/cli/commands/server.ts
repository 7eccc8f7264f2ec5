import type { Command } from 'commander';
import { BerthError } from '../../../common/errors.js';
import { isUuid } from '../../../common/koa.js';
import {
  buildAndRunInstance,
  imageDict,
  instancePrimitive,
  instanceRequest,
  rebuildInstance,
  requestContext,
  terminateInstance,
} from '../../lib/nova-requests.js';
import type { CliContext } from '../context.js';
import { UsageError } from '../context.js';
import { printList, printObject } from '../output.js';
import type { InstanceView } from '../../../driver/compute/berth-endpoint.js';
import type { InstanceActionName } from '../../../driver/compute/states.js';
import { commaList, positiveInt, timeoutOption, type Run } from './server-args.js';
import { forEach, resolveImage, resolveServer, showInstance, type ServerView } from './server-lookup.js';
import { checkState, primitiveOf, printInstance, printInstances, statusOf } from './server-view.js';
import { waitForEvent } from './server-wait.js';
import { addFlavorOptions, chosenFlavor } from './flavor-args.js';
import { attachForCreate } from './volume.js';

/** The `server` commands; returns the group, so that other modules add theirs (server-resize.ts). */
export function registerServer(program: Command, run: Run): Command {
  const server = program.command('server').description('instances on a compute node');

  addFlavorOptions(
    server
      .command('create')
      .description('boot an instance (sends build_and_run_instance as a control plane would)')
      .requiredOption('--image <image>', 'image id, name, or registry reference (docker://HOST/REPO:TAG)'),
  )
    .option('--name <name>', 'display name')
    .option('--project <id>', 'owning project', 'berth')
    .option('--property <key=value...>', 'instance metadata')
    .option('--volume <volume:path...>', 'a local volume of the project mounted read-write at an absolute path (berth volume create); repeatable')
    .option('--wait', 'wait until the instance is active (or failed)')
    .option(...timeoutOption(300))
    .action((o) =>
      run(async (ctx) => {
        const flavor = chosenFlavor(ctx.config, o);
        const image = await resolveImage(ctx, o.image);
        const metadata: Record<string, string> = {};
        for (const kv of (o.property ?? []) as string[]) {
          const eq = kv.indexOf('=');
          if (eq <= 0) throw new UsageError(`--property wants key=value, got ${JSON.stringify(kv)}`);
          metadata[kv.slice(0, eq)] = kv.slice(eq + 1);
        }
        const inst = instancePrimitive({
          image_id: image.id,
          name: o.name,
          project_id: o.project,
          flavor,
          metadata,
        });
        const data = inst['nova_object.data'] as { uuid: string; display_name: string; flavor: { 'nova_object.data': Record<string, unknown> } };
        const uuid = data.uuid;
        await attachForCreate(ctx, uuid, o.project, (o.volume ?? []) as string[]);
        const rpc = await ctx.rpcClient();
        const send = () => rpc.cast(ctx.computeKey, buildAndRunInstance(inst, imageDict(image), requestContext(o.project)));
        if (!o.wait) {
          await send();
          // The keys `server show` (and create --wait) print, with what is known before the node answers.
          const f = data.flavor?.['nova_object.data'] ?? {};
          printInstance(ctx, {
            uuid,
            name: data.display_name,
            host: ctx.host,
            project_id: o.project,
            image: image.id,
            flavor: {
              name: f.name,
              vcpus: flavor.vcpus,
              memory_mb: flavor.memory_mb,
              root_gb: flavor.root_gb,
              swap: f.swap ?? 0,
              extra_specs: f.extra_specs ?? {},
            },
            vm_state: 'building',
            task_state: 'scheduling',
            power_state: 'pending',
            ip_address: null,
            created_at: new Date().toISOString(),
            launched_at: null,
            terminated_at: null,
            fault: null,
            actions: [],
            system_metadata: {},
            migration: null,
          });
          return;
        }
        const outcome = await waitForEvent(ctx, uuid, 'create', o.timeout, send);
        printInstance(ctx, await showInstance(ctx, uuid));
        if (outcome === 'error') process.exitCode = 1;
      }),
    );

  server
    .command('delete <server...>')
    .description('delete instances by name or id (terminate_instance); an id already gone counts as deleted')
    .option('--wait', 'wait until each is deleted')
    .option(...timeoutOption(120))
    .action((refs: string[], o) =>
      run(async (ctx) => {
        const rpc = await ctx.rpcClient();
        const deleted = await forEach(refs, async (ref) => {
          const view = await resolveServer(ctx, ref).catch((err: unknown) => {
            // An id the node no longer knows is deleted already; a name must still match.
            if (isUuid(ref) && (err as BerthError).code !== 'BROKER_UNREACHABLE') return null;
            throw err;
          });
          const uuid = view?.uuid ?? ref.toLowerCase();
          const inst = view
            ? primitiveOf(view)
            : instancePrimitive({ uuid, image_id: '', flavor: { vcpus: 1, memory_mb: 1 }, host: ctx.host, vm_state: 'active', task_state: null });
          if (o.wait && view) await waitForEvent(ctx, uuid, 'delete', o.timeout, () => rpc.cast(ctx.computeKey, terminateInstance(inst)));
          else await rpc.cast(ctx.computeKey, terminateInstance(inst));
          if (ctx.format === 'table') process.stdout.write(`deleted ${uuid}\n`);
          return { id: uuid, name: view?.name ?? null, deleted: true };
        });
        if (ctx.format !== 'table') {
          if (refs.length === 1 && deleted.length === 1) printObject(deleted[0]!, ctx.format);
          else printList(['id', 'name', 'deleted'], deleted, ctx.format);
        }
      }),
    );

  server
    .command('list')
    .description('instances of the node, or of several nodes with --all-hosts')
    .option('--all', 'include deleted instances')
    .option('--long', 'more columns: project, flavor, host, created and launched times')
    .option('--all-hosts', 'ask every node of --hosts (or [DEFAULT] compute_hosts) and add a host column')
    .option('--hosts <list>', 'comma-separated compute nodes for --all-hosts (implies it)', commaList('--hosts'))
    .action((o: { all?: boolean; long?: boolean; allHosts?: boolean; hosts?: string[] }) =>
      run(async (ctx) => {
        const columns = ['uuid', 'name', 'vm_state', 'task_state', 'power_state', 'ip_address', 'image'];
        if (o.long) columns.push('status', 'project_id', 'flavor_name', 'created_at', 'launched_at');
        const row = (v: InstanceView) => ({
          ...v,
          status: statusOf(v.vm_state, v.task_state),
          flavor_name: (v.flavor as { name?: string } | null)?.name ?? null,
        });
        const listOn = async (host: string) => {
          const rpc = await ctx.rpcClient();
          return rpc.call<InstanceView[]>(
            `compute.${host}`,
            { method: 'list_instances', namespace: 'berth', version: '1.0', args: { all: Boolean(o.all) } },
            ctx.config.DEFAULT.rpc_response_timeout,
          );
        };
        if (!o.allHosts && !o.hosts) {
          const views = await listOn(ctx.host);
          printList(columns, (o.long ? views.map(row) : views) as unknown as Record<string, unknown>[], ctx.format);
          return;
        }
        const hosts = o.hosts ?? ctx.config.DEFAULT.compute_hosts;
        if (!hosts.length) throw new UsageError('--all-hosts needs the nodes: --hosts node1,node2 or [DEFAULT] compute_hosts');
        // A fanout cast cannot be answered, so each node is asked on its own queue, all at once.
        const answers = await Promise.allSettled(hosts.map(listOn));
        const rows = answers.flatMap((a, i) => (a.status === 'fulfilled' ? a.value.map((v) => ({ ...(o.long ? row(v) : v), host: hosts[i] })) : []));
        printList(['host', ...columns], rows as unknown as Record<string, unknown>[], ctx.format);
        const failed = answers.flatMap((a, i) => (a.status === 'rejected' ? [`${hosts[i]}: ${(a.reason as Error).message}`] : []));
        for (const line of failed) process.stderr.write(`berth: ${line}\n`);
        // The nodes that answered are listed; the exit code still says that some did not.
        if (failed.length) process.exitCode = 3;
      }),
    );

  server
    .command('show <server>')
    .description('one instance by name or id: state, fault, actions')
    .action((ref: string) =>
      run(async (ctx) => {
        printInstance(ctx, await resolveServer(ctx, ref));
      }),
    );

  server
    .command('console-log <server>')
    .description('the instance console output')
    .option('--lines <n>', 'last N lines', positiveInt('--lines'))
    .action((ref: string, o) =>
      run(async (ctx) => {
        const view = await resolveServer(ctx, ref);
        const rpc = await ctx.rpcClient();
        const out = await rpc.call<string>(
          ctx.computeKey,
          instanceRequest('get_console_output', primitiveOf(view), { tail_length: o.lines ?? null }),
          ctx.config.DEFAULT.rpc_response_timeout,
        );
        process.stdout.write(out.endsWith('\n') || out === '' ? out : `${out}\n`);
      }),
    );

  /** An action on each named instance; with --wait, until its notification; then their state. */
  const act =
    (o: { wait?: boolean; timeout: number }, event: string, prepare: (view: ServerView) => Promise<Record<string, unknown>>) =>
    async (ctx: CliContext, refs: string[]) => {
      const rpc = await ctx.rpcClient();
      let errored = false;
      const views = await forEach(refs, async (ref) => {
        const view = await resolveServer(ctx, ref);
        const msg = await prepare(view);
        const send = () => rpc.cast(ctx.computeKey, msg);
        if (o.wait) {
          if ((await waitForEvent(ctx, view.uuid, event, o.timeout, send)) === 'error') errored = true;
        } else await send();
        return showInstance(ctx, view.uuid);
      });
      printInstances(ctx, views);
      if (errored) process.exitCode = 1;
    };

  const simple: [InstanceActionName, string, string, Record<string, unknown>][] = [
    ['stop', 'stop_instance', 'power_off', { clean_shutdown: true }],
    ['start', 'start_instance', 'power_on', {}],
    ['pause', 'pause_instance', 'pause', {}],
    ['unpause', 'unpause_instance', 'unpause', {}],
    ['suspend', 'suspend_instance', 'suspend', {}],
    ['resume', 'resume_instance', 'resume', {}],
    ['restore', 'restore_instance', 'restore', {}],
  ];
  server
    .command('soft-delete <server...>')
    .description('soft-delete instances (soft_delete_instance): stopped and kept until restore or delete')
    .option('--wait', 'wait for the result')
    .option(...timeoutOption(120))
    .action((refs: string[], o) =>
      run((ctx) =>
        act(o, 'soft_delete', async (view) => {
          checkState(view, 'soft_delete', 'soft-delete');
          return instanceRequest('soft_delete_instance', primitiveOf(view));
        })(ctx, refs),
      ),
    );
  for (const [verb, method, event, extra] of simple) {
    server
      .command(`${verb} <server...>`)
      .description(`${verb} instances by name or id (${method})`)
      .option('--wait', 'wait for the result')
      .option(...timeoutOption(120))
      .action((refs: string[], o) =>
        run((ctx) =>
          act(o, event, async (view) => {
            checkState(view, verb, verb);
            return instanceRequest(method, primitiveOf(view), extra);
          })(ctx, refs),
        ),
      );
  }
  server
    .command('snapshot <server>')
    .description('snapshot an instance into a new image (snapshot_instance)')
    .requiredOption('--name <name>', 'name of the new image')
    .option('--wait', 'wait until the image is active')
    .option(...timeoutOption(1800))
    .action((ref: string, o) =>
      run(async (ctx) => {
        const view = await resolveServer(ctx, ref);
        const uuid = view.uuid;
        checkState(view, 'createImage', 'snapshot');
        const images = ctx.nodeImages();
        // Like nova-api: the image record exists (queued) before the node is asked to fill it.
        const image = await images.createImage({
          name: o.name,
          container_format: 'docker',
          disk_format: 'raw',
          visibility: 'private',
          image_type: 'snapshot',
          instance_uuid: uuid,
          base_image_ref: view.image,
        });
        const rpc = await ctx.rpcClient();
        const send = () => rpc.cast(ctx.computeKey, instanceRequest('snapshot_instance', primitiveOf(view), { image_id: image.id }));
        if (o.wait) {
          if ((await waitForEvent(ctx, uuid, 'snapshot', o.timeout, send)) === 'error') process.exitCode = 1;
        } else await send();
        printObject((await images.getImage(image.id)) as unknown as Record<string, unknown>, ctx.format);
      }),
    );

  server
    .command('rebuild <server...>')
    .description('rebuild instances on another image (rebuild_instance)')
    .requiredOption('--image <image>', 'image id, name, or registry reference')
    .option('--wait', 'wait for the result')
    .option(...timeoutOption(300))
    .action((refs: string[], o) =>
      run(async (ctx) => {
        const image = await resolveImage(ctx, o.image);
        await act(o, 'rebuild', async (view) => {
          checkState(view, 'rebuild', 'rebuild');
          return rebuildInstance(primitiveOf(view), view.image, image.id);
        })(ctx, refs);
      }),
    );

  server
    .command('reboot <server...>')
    .description('reboot instances by name or id (reboot_instance)')
    .option('--hard', 'hard reboot')
    .option('--wait', 'wait for the result')
    .option(...timeoutOption(120))
    .action((refs: string[], o) =>
      run((ctx) =>
        act(o, 'reboot', async (view) => {
          checkState(view, o.hard ? 'reboot_hard' : 'reboot', 'reboot');
          return instanceRequest('reboot_instance', primitiveOf(view), { block_device_info: null, reboot_type: o.hard ? 'HARD' : 'SOFT' });
        })(ctx, refs),
      ),
    );
  return server;
}
