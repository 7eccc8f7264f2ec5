import type { Command } from 'commander';
import { BerthError } from '../../../common/errors.js';
import { isUuid } from '../../../common/koa.js';
import type { GlanceImage } from '../../../glance-bridge/client/types.js';
import { buildAndRunInstance, imageDict, instancePrimitive, instanceRequest, requestContext, terminateInstance } from '../../lib/nova-requests.js';
import type { CliContext } from '../context.js';
import { UsageError } from '../context.js';
import { printList, printObject, spinner } from '../output.js';
import { WaitTimeout } from '../wait-timeout.js';
import type { InstanceView } from '../../../driver/compute/berth-endpoint.js';
import { canStart, type InstanceActionName } from '../../../driver/compute/states.js';
import type { TaskState, VmState } from '../../../driver/db/models.js';

export type Run = (fn: (ctx: CliContext) => Promise<void>) => Promise<void>;

export function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
    return n;
  };
}

function commaList(name: string) {
  return (v: string): string[] => {
    const items = v
      .split(',')
      .map((h) => h.trim())
      .filter(Boolean);
    if (!items.length || items.some((h) => !/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/.test(h)))
      throw new UsageError(`${name} must be a comma-separated list of host names, got ${JSON.stringify(v)}`);
    return items;
  };
}

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

export async function showInstance(ctx: CliContext, uuid: string): Promise<InstanceView & Record<string, unknown>> {
  const rpc = await ctx.rpcClient();
  return rpc.call(ctx.computeKey, { method: 'show_instance', namespace: 'berth', version: '1.0', args: { uuid } }, ctx.config.DEFAULT.rpc_response_timeout);
}

/** nova's server status for a vm_state (the openstack client's Status column). */
function statusOf(vmState: string, taskState: string | null): string {
  const s: Record<string, string> = {
    active: 'ACTIVE',
    building: 'BUILD',
    stopped: 'SHUTOFF',
    paused: 'PAUSED',
    suspended: 'SUSPENDED',
    error: 'ERROR',
    deleted: 'DELETED',
    rescued: 'RESCUE',
    shelved: 'SHELVED',
    shelved_offloaded: 'SHELVED_OFFLOADED',
    'soft-delete': 'SOFT_DELETED',
  };
  if (vmState === 'active' && taskState?.startsWith('rebooting_hard')) return 'HARD_REBOOT';
  if (vmState === 'active' && taskState?.startsWith('reboot')) return 'REBOOT';
  if (vmState === 'active' && taskState?.startsWith('rebuild')) return 'REBUILD';
  if (taskState === 'resize_reverting') return 'REVERT_RESIZE';
  if (taskState?.startsWith('resize_')) return 'RESIZE';
  if (vmState === 'resized') return 'VERIFY_RESIZE';
  return s[vmState] ?? vmState.toUpperCase();
}

export type ServerView = InstanceView & Record<string, unknown>;

/** An instance as every server command prints it: `id`, `name` and `status` first, then the node's view. */
function withId(v: ServerView): ServerView {
  const { uuid, name, ...rest } = v;
  return { id: uuid, name, status: statusOf(v.vm_state, v.task_state), uuid, ...rest } as ServerView;
}

/** An instance by uuid or by name (a name must be unique on the node). */
export async function resolveServer(ctx: CliContext, ref: string): Promise<ServerView> {
  if (isUuid(ref)) return showInstance(ctx, ref.toLowerCase());
  const rpc = await ctx.rpcClient();
  const all = await rpc.call<InstanceView[]>(
    ctx.computeKey,
    { method: 'list_instances', namespace: 'berth', version: '1.0', args: { all: false } },
    ctx.config.DEFAULT.rpc_response_timeout,
  );
  const named = all.filter((i) => i.name === ref);
  // As for images (resolveImage): a name that matches nothing, or several, is bad usage (exit 2).
  if (named.length > 1) throw new UsageError(`${named.length} instances are named ${JSON.stringify(ref)} on ${ctx.host}: use an id`);
  if (!named.length) throw new UsageError(`no instance with a name or id of ${JSON.stringify(ref)} on ${ctx.host}`);
  return showInstance(ctx, named[0]!.uuid);
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

/** An instance for people: flavor, fault and actions on one line each. */
function forPeople(v: InstanceView & Record<string, unknown>): Record<string, unknown> {
  const f = v.flavor as { name?: string; vcpus: number; memory_mb: number; root_gb: number };
  const fault = v.fault as { exception: string; message: string; created_at: string } | null | undefined;
  const actions = (v.actions as { action: string; result: string | null; request_id: string | null }[] | undefined) ?? [];
  return {
    ...v,
    flavor: `${f.name ?? '-'} (${f.vcpus} vCPU, ${f.memory_mb} MB RAM, ${f.root_gb} GB disk)`,
    fault: fault ? `${fault.exception}: ${fault.message} (${fault.created_at})` : '',
    actions: actions.map((a) => `${a.action}: ${a.result ?? 'running'} [${a.request_id ?? '-'}]`).join('; '),
  };
}

export function printInstance(ctx: CliContext, v: InstanceView & Record<string, unknown>): void {
  const view = withId(v);
  printObject(ctx.format === 'json' || ctx.format === 'yaml' ? view : forPeople(view), ctx.format);
}

/** Several instances after an action on them: one row each. */
function printInstances(ctx: CliContext, views: ServerView[]): void {
  if (views.length === 1) return printInstance(ctx, views[0]!);
  printList(['id', 'name', 'status', 'vm_state', 'task_state', 'power_state'], views.map(withId), ctx.format);
}

/** The Instance primitive a control plane would send for an existing instance. */
export function primitiveOf(v: InstanceView): Record<string, unknown> {
  const flavor = v.flavor as { vcpus: number; memory_mb: number; root_gb: number; swap: number; name: string; extra_specs: Record<string, string> };
  return instancePrimitive({
    uuid: v.uuid,
    name: v.name,
    image_id: v.image,
    flavor,
    project_id: v.project_id,
    host: v.host,
    vm_state: v.vm_state,
    task_state: v.task_state,
  });
}

/** nova-api's check_instance_state: refuse before sending what the node would refuse. */
export function checkState(view: InstanceView, action: InstanceActionName, verb: string): void {
  if (!canStart(action, view.vm_state as VmState, view.task_state as TaskState | null)) {
    throw new BerthError(
      'INSTANCE_INVALID_STATE',
      `cannot ${verb} instance ${view.uuid}: it is ${view.vm_state}${view.task_state ? ` (${view.task_state})` : ''}`,
      { status: 409 },
    );
  }
}

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

/** `--timeout` of a waiting command, with its default. */
export function timeoutOption(def: number): [string, string, (v: string) => number, number] {
  return ['--timeout <s>', `seconds to wait with --wait (default ${def})`, positiveInt('--timeout'), def];
}

/** The `server` commands; returns the group, so that other modules add theirs (server-resize.ts). */
export function registerServer(program: Command, run: Run): Command {
  const server = program.command('server').description('instances on a compute node');

  server
    .command('create')
    .description('boot an instance (sends build_and_run_instance as a control plane would)')
    .requiredOption('--image <image>', 'image id, name, or registry reference (docker://HOST/REPO:TAG)')
    .requiredOption('--flavor-vcpus <n>', 'vCPUs', positiveInt('--flavor-vcpus'))
    .requiredOption('--flavor-ram <mb>', 'memory in MiB', positiveInt('--flavor-ram'))
    .option('--flavor-disk <gb>', 'root disk in GiB', positiveInt('--flavor-disk'), 1)
    .option('--name <name>', 'display name')
    .option('--project <id>', 'owning project', 'berth')
    .option('--property <key=value...>', 'instance metadata')
    .option('--wait', 'wait until the instance is active (or failed)')
    .option(...timeoutOption(300))
    .action((o) =>
      run(async (ctx) => {
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
          flavor: { vcpus: o.flavorVcpus, memory_mb: o.flavorRam, root_gb: o.flavorDisk },
          metadata,
        });
        const data = inst['nova_object.data'] as { uuid: string; display_name: string; flavor: { 'nova_object.data': Record<string, unknown> } };
        const uuid = data.uuid;
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
            flavor: { name: f.name, vcpus: o.flavorVcpus, memory_mb: o.flavorRam, root_gb: o.flavorDisk, swap: f.swap ?? 0, extra_specs: f.extra_specs ?? {} },
            vm_state: 'building',
            task_state: 'scheduling',
            power_state: 'pending',
            ip_address: null,
            created_at: new Date().toISOString(),
            launched_at: null,
            terminated_at: null,
            fault: null,
            actions: [],
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
          return instanceRequest('rebuild_instance', primitiveOf(view), {
            orig_image_ref: view.image,
            image_ref: image.id,
            injected_files: [],
            new_pass: null,
            orig_sys_metadata: {},
            bdms: null,
            recreate: false,
            on_shared_storage: null,
            preserve_ephemeral: false,
            migration: null,
            scheduled_node: null,
            limits: null,
            request_spec: null,
            accel_uuids: [],
          });
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
