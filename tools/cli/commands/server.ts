import type { Command } from 'commander';
import { BerthError } from '../../../common/errors.js';
import { isUuid } from '../../../common/koa.js';
import type { GlanceImage } from '../../../glance-bridge/client/types.js';
import { buildAndRunInstance, imageDict, instancePrimitive, instanceRequest, requestContext, terminateInstance } from '../../lib/nova-requests.js';
import type { CliContext } from '../context.js';
import { UsageError } from '../context.js';
import { printList, printObject, spinner } from '../output.js';
import type { InstanceView } from '../../../driver/compute/berth-endpoint.js';
import { canStart, type InstanceActionName } from '../../../driver/compute/states.js';
import type { TaskState, VmState } from '../../../driver/db/models.js';

type Run = (fn: (ctx: CliContext) => Promise<void>) => Promise<void>;

function positiveInt(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} must be a positive integer, got ${JSON.stringify(v)}`);
    return n;
  };
}

function commaList(name: string) {
  return (v: string): string[] => {
    const items = v.split(',').map((h) => h.trim()).filter(Boolean);
    if (!items.length || items.some((h) => !/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/.test(h))) throw new UsageError(`${name} must be a comma-separated list of host names, got ${JSON.stringify(v)}`);
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

async function showInstance(ctx: CliContext, uuid: string): Promise<InstanceView & Record<string, unknown>> {
  const rpc = await ctx.rpcClient();
  return rpc.call(ctx.computeKey, { method: 'show_instance', namespace: 'berth', version: '1.0', args: { uuid } }, ctx.config.DEFAULT.rpc_response_timeout);
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

function printInstance(ctx: CliContext, v: InstanceView & Record<string, unknown>): void {
  printObject(ctx.format === 'json' ? v : forPeople(v), ctx.format);
}

/** The Instance primitive a control plane would send for an existing instance. */
function primitiveOf(v: InstanceView): Record<string, unknown> {
  const flavor = v.flavor as { vcpus: number; memory_mb: number; root_gb: number; swap: number; name: string; extra_specs: Record<string, string> };
  return instancePrimitive({ uuid: v.uuid, name: v.name, image_id: v.image, flavor, project_id: v.project_id, host: v.host, vm_state: v.vm_state, task_state: v.task_state });
}

/** nova-api's check_instance_state: refuse before sending what the node would refuse. */
function checkState(view: InstanceView, action: InstanceActionName, verb: string): void {
  if (!canStart(action, view.vm_state as VmState, view.task_state as TaskState | null)) {
    throw new BerthError('INSTANCE_INVALID_STATE', `cannot ${verb} instance ${view.uuid}: it is ${view.vm_state}${view.task_state ? ` (${view.task_state})` : ''}`, { status: 409 });
  }
}

/** Waits for `instance.<event>.end` or `.error` of one instance. */
async function waitForEvent(ctx: CliContext, uuid: string, event: string, timeoutS: number, send: () => Promise<void>): Promise<'end' | 'error'> {
  const rpc = await ctx.rpcClient();
  const spin = spinner(`waiting for ${event} of ${uuid}`);
  const outcome = new Promise<'end' | 'error'>((resolve, reject) => {
    const t = setTimeout(() => reject(new UsageError(`timed out after ${timeoutS}s waiting for instance.${event}.end of ${uuid}`)), timeoutS * 1000);
    rpc.onEvent((type, msg) => {
      const data = (msg.payload as { 'nova_object.data'?: { uuid?: string } } | undefined)?.['nova_object.data'];
      if (data?.uuid !== uuid) return;
      if (type === `instance.${event}.start`) spin.update(`${event} started`);
      if (type === `instance.${event}.end`) { clearTimeout(t); resolve('end'); }
      if (type === `instance.${event}.error`) { clearTimeout(t); resolve('error'); }
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

export function registerServer(program: Command, run: Run): void {
  const server = program.command('server').description('instances on a compute node');

  server.command('create')
    .description('boot an instance (sends build_and_run_instance as a control plane would)')
    .requiredOption('--image <image>', 'image id, name, or registry reference (docker://HOST/REPO:TAG)')
    .requiredOption('--flavor-vcpus <n>', 'vCPUs', positiveInt('--flavor-vcpus'))
    .requiredOption('--flavor-ram <mb>', 'memory in MiB', positiveInt('--flavor-ram'))
    .option('--flavor-disk <gb>', 'root disk in GiB', positiveInt('--flavor-disk'), 1)
    .option('--name <name>', 'display name')
    .option('--project <id>', 'owning project', 'berth')
    .option('--property <key=value...>', 'instance metadata')
    .option('--wait', 'wait until the instance is active (or failed)')
    .option('--timeout <s>', 'seconds to wait with --wait', positiveInt('--timeout'), 300)
    .action((o) => run(async (ctx) => {
      const image = await resolveImage(ctx, o.image);
      const metadata: Record<string, string> = {};
      for (const kv of (o.property ?? []) as string[]) {
        const eq = kv.indexOf('=');
        if (eq <= 0) throw new UsageError(`--property wants key=value, got ${JSON.stringify(kv)}`);
        metadata[kv.slice(0, eq)] = kv.slice(eq + 1);
      }
      const inst = instancePrimitive({ image_id: image.id, name: o.name, project_id: o.project, flavor: { vcpus: o.flavorVcpus, memory_mb: o.flavorRam, root_gb: o.flavorDisk }, metadata });
      const uuid = (inst['nova_object.data'] as { uuid: string }).uuid;
      const rpc = await ctx.rpcClient();
      const send = () => rpc.cast(ctx.computeKey, buildAndRunInstance(inst, imageDict(image), requestContext(o.project)));
      if (!o.wait) {
        await send();
        printObject({ id: uuid, name: (inst['nova_object.data'] as { display_name: string }).display_name, status: 'BUILD', image: image.id, host: ctx.host }, ctx.format);
        return;
      }
      const outcome = await waitForEvent(ctx, uuid, 'create', o.timeout, send);
      printInstance(ctx, await showInstance(ctx, uuid));
      if (outcome === 'error') process.exitCode = 1;
    }));

  server.command('delete <uuid>')
    .description('delete an instance (terminate_instance); succeeds if it is already gone')
    .option('--wait', 'wait until it is deleted')
    .action((uuid: string, o) => run(async (ctx) => {
      if (!isUuid(uuid)) throw new UsageError(`not an instance uuid: ${JSON.stringify(uuid)}`);
      const rpc = await ctx.rpcClient();
      const view = await showInstance(ctx, uuid).catch(() => null);
      const inst = view ? primitiveOf(view) : instancePrimitive({ uuid, image_id: '', flavor: { vcpus: 1, memory_mb: 1 }, host: ctx.host, vm_state: 'active', task_state: null });
      if (o.wait && view) await waitForEvent(ctx, uuid, 'delete', 120, () => rpc.cast(ctx.computeKey, terminateInstance(inst)));
      else await rpc.cast(ctx.computeKey, terminateInstance(inst));
      if (ctx.format === 'json') printObject({ id: uuid, deleted: true }, 'json');
      else process.stdout.write(`deleted ${uuid}\n`);
    }));

  server.command('list')
    .description('instances of the node, or of several nodes with --all-hosts')
    .option('--all', 'include deleted instances')
    .option('--all-hosts', 'ask every node of --hosts (or [DEFAULT] compute_hosts) and add a host column')
    .option('--hosts <list>', 'comma-separated compute nodes for --all-hosts (implies it)', commaList('--hosts'))
    .action((o: { all?: boolean; allHosts?: boolean; hosts?: string[] }) => run(async (ctx) => {
      const columns = ['uuid', 'name', 'vm_state', 'task_state', 'power_state', 'ip_address', 'image'];
      const listOn = async (host: string) => {
        const rpc = await ctx.rpcClient();
        return rpc.call<InstanceView[]>(`compute.${host}`, { method: 'list_instances', namespace: 'berth', version: '1.0', args: { all: Boolean(o.all) } }, ctx.config.DEFAULT.rpc_response_timeout);
      };
      if (!o.allHosts && !o.hosts) {
        printList(columns, await listOn(ctx.host) as unknown as Record<string, unknown>[], ctx.format);
        return;
      }
      const hosts = o.hosts ?? ctx.config.DEFAULT.compute_hosts;
      if (!hosts.length) throw new UsageError('--all-hosts needs the nodes: --hosts node1,node2 or [DEFAULT] compute_hosts');
      // A fanout cast cannot be answered, so each node is asked on its own queue, all at once.
      const answers = await Promise.allSettled(hosts.map(listOn));
      const rows = answers.flatMap((a, i) => (a.status === 'fulfilled' ? a.value.map((v) => ({ ...v, host: hosts[i] })) : []));
      printList(['host', ...columns], rows as unknown as Record<string, unknown>[], ctx.format);
      const failed = answers.flatMap((a, i) => (a.status === 'rejected' ? [`${hosts[i]}: ${(a.reason as Error).message}`] : []));
      for (const line of failed) process.stderr.write(`berth: ${line}\n`);
      // The nodes that answered are listed; the exit code still says that some did not.
      if (failed.length) process.exitCode = 3;
    }));

  server.command('show <uuid>')
    .description('one instance: state, fault, actions')
    .action((uuid: string) => run(async (ctx) => {
      if (!isUuid(uuid)) throw new UsageError(`not an instance uuid: ${JSON.stringify(uuid)}`);
      printInstance(ctx, await showInstance(ctx, uuid));
    }));

  server.command('console-log <uuid>')
    .description('the instance console output')
    .option('--lines <n>', 'last N lines', positiveInt('--lines'))
    .action((uuid: string, o) => run(async (ctx) => {
      const view = await showInstance(ctx, uuid);
      const rpc = await ctx.rpcClient();
      const out = await rpc.call<string>(ctx.computeKey, instanceRequest('get_console_output', primitiveOf(view), { tail_length: o.lines ?? null }), ctx.config.DEFAULT.rpc_response_timeout);
      process.stdout.write(out.endsWith('\n') || out === '' ? out : `${out}\n`);
    }));

  const simple: [InstanceActionName, string, string, Record<string, unknown>][] = [
    ['stop', 'stop_instance', 'power_off', { clean_shutdown: true }],
    ['start', 'start_instance', 'power_on', {}],
    ['pause', 'pause_instance', 'pause', {}],
    ['unpause', 'unpause_instance', 'unpause', {}],
    ['suspend', 'suspend_instance', 'suspend', {}],
    ['resume', 'resume_instance', 'resume', {}],
  ];
  for (const [verb, method, event, extra] of simple) {
    server.command(`${verb} <uuid>`).description(`${verb} an instance (${method})`).option('--wait', 'wait for the result')
      .action((uuid: string, o) => run(async (ctx) => {
        const view = await showInstance(ctx, uuid);
        checkState(view, verb, verb);
        const rpc = await ctx.rpcClient();
        const send = () => rpc.cast(ctx.computeKey, instanceRequest(method, primitiveOf(view), extra));
        if (o.wait) { if (await waitForEvent(ctx, uuid, event, 120, send) === 'error') process.exitCode = 1; } else await send();
        printInstance(ctx, await showInstance(ctx, uuid));
      }));
  }
  server.command('snapshot <uuid>')
    .description('snapshot an instance into a new image (snapshot_instance)')
    .requiredOption('--name <name>', 'name of the new image')
    .option('--wait', 'wait until the image is active')
    .action((uuid: string, o) => run(async (ctx) => {
      const view = await showInstance(ctx, uuid);
      checkState(view, 'createImage', 'snapshot');
      const images = ctx.nodeImages();
      // Like nova-api: the image record exists (queued) before the node is asked to fill it.
      const image = await images.createImage({ name: o.name, container_format: 'docker', disk_format: 'raw', visibility: 'private', image_type: 'snapshot', instance_uuid: uuid, base_image_ref: view.image });
      const rpc = await ctx.rpcClient();
      const send = () => rpc.cast(ctx.computeKey, instanceRequest('snapshot_instance', primitiveOf(view), { image_id: image.id }));
      if (o.wait) { if (await waitForEvent(ctx, uuid, 'snapshot', 1800, send) === 'error') process.exitCode = 1; } else await send();
      printObject((await images.getImage(image.id)) as unknown as Record<string, unknown>, ctx.format);
    }));

  server.command('rebuild <uuid>')
    .description('rebuild an instance on another image (rebuild_instance)')
    .requiredOption('--image <image>', 'image id, name, or registry reference')
    .option('--wait', 'wait for the result')
    .action((uuid: string, o) => run(async (ctx) => {
      const view = await showInstance(ctx, uuid);
      checkState(view, 'rebuild', 'rebuild');
      const image = await resolveImage(ctx, o.image);
      const rpc = await ctx.rpcClient();
      const send = () => rpc.cast(ctx.computeKey, instanceRequest('rebuild_instance', primitiveOf(view), {
        orig_image_ref: view.image, image_ref: image.id, injected_files: [], new_pass: null, orig_sys_metadata: {}, bdms: null,
        recreate: false, on_shared_storage: null, preserve_ephemeral: false, migration: null, scheduled_node: null, limits: null,
        request_spec: null, accel_uuids: [],
      }));
      if (o.wait) { if (await waitForEvent(ctx, uuid, 'rebuild', 300, send) === 'error') process.exitCode = 1; } else await send();
      printInstance(ctx, await showInstance(ctx, uuid));
    }));

  server.command('reboot <uuid>').description('reboot an instance (reboot_instance)').option('--hard', 'hard reboot').option('--wait', 'wait for the result')
    .action((uuid: string, o) => run(async (ctx) => {
      const view = await showInstance(ctx, uuid);
      checkState(view, o.hard ? 'reboot_hard' : 'reboot', 'reboot');
      const rpc = await ctx.rpcClient();
      const send = () => rpc.cast(ctx.computeKey, instanceRequest('reboot_instance', primitiveOf(view), { block_device_info: null, reboot_type: o.hard ? 'HARD' : 'SOFT' }));
      if (o.wait) { if (await waitForEvent(ctx, uuid, 'reboot', 120, send) === 'error') process.exitCode = 1; } else await send();
      printInstance(ctx, await showInstance(ctx, uuid));
    }));
}
