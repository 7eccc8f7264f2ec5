import { BerthError } from '../../../common/errors.js';
import { instancePrimitive } from '../../lib/nova-requests.js';
import type { CliContext } from '../context.js';
import { printList, printObject } from '../output.js';
import type { InstanceView } from '../../../driver/compute/berth-endpoint.js';
import { canStart, type InstanceActionName } from '../../../driver/compute/states.js';
import type { TaskState, VmState } from '../../../driver/db/models.js';
import type { ServerView } from './server-lookup.js';

/** nova's server status for a vm_state (the openstack client's Status column). */
export function statusOf(vmState: string, taskState: string | null): string {
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

/** An instance as every server command prints it: `id`, `name` and `status` first, then the node's view. */
function withId(v: ServerView): ServerView {
  const { uuid, name, ...rest } = v;
  return { id: uuid, name, status: statusOf(v.vm_state, v.task_state), uuid, ...rest } as ServerView;
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
export function printInstances(ctx: CliContext, views: ServerView[]): void {
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
