import type { InstanceStatus } from '../../agent/client/types.js';
import { PowerState, type TaskState, type VmState } from '../db/vm-states.js';

/**
 * The lifecycle transition table, with nova's meanings (nova/compute/vm_states.py,
 * task_states.py and the check_instance_state guards of nova/compute/api.py). An action may
 * start only from the listed vm_states with no task in progress; while it runs the instance
 * carries the task_state; when it succeeds it lands in `to`, when it fails in `onError`.
 * driver/compute/lifecycle.ts records each step of a row to every sink (docs/architecture.md).
 */
export type InstanceActionName =
  | 'create'
  | 'delete'
  | 'stop'
  | 'start'
  | 'reboot'
  | 'reboot_hard'
  | 'pause'
  | 'unpause'
  | 'suspend'
  | 'resume'
  | 'rebuild'
  | 'evacuate'
  | 'createImage'
  | 'backup'
  | 'resize_prep'
  | 'resize'
  | 'resize_finish'
  | 'resize_confirm'
  | 'resize_revert'
  | 'trigger_crash_dump'
  | 'soft_delete'
  | 'restore'
  | 'shelve'
  | 'shelve_offload'
  | 'unshelve'
  | 'start_shelved'
  | 'attach_interface'
  | 'detach_interface';

/** The instance fields a transition sets. */
export interface StateChange {
  vm_state?: VmState;
  task_state?: TaskState | null;
  power_state?: number;
}

/**
 * Where a successful action lands: a vm_state and power_state (`kept`: the power state stays as
 * it is, as an in-place resize leaves the guest), `unchanged` (the task cleared, snapshots), a
 * task state handed on to the next step of an action that spans several messages (resize), or
 * `by-power`: active, or stopped when the guest is powered off (nova's confirm and revert of a
 * resize, which find the instance as the user left it).
 */
export type Landing = { vm_state: VmState; power_state: number | 'kept' } | 'unchanged' | { task_state: TaskState } | 'by-power';

export interface Transition {
  from: readonly VmState[] | 'any';
  /** The task states it may start from (nova-api sets some before casting). Default: none in progress. */
  fromTask?: readonly (TaskState | null)[];
  /** The task state while it runs; null for actions nova runs with none (confirm of a resize). */
  task: TaskState | null;
  /**
   * A step of a multi-message action that takes the instance from the control plane's task state
   * (nova's `instance.save(expected_task_state=...)` at the start of resize_instance and
   * finish_resize): `begin` saves `task` there first, guarded by these.
   */
  claim?: readonly (TaskState | null)[];
  to: Landing;
  /** The notification event stem, `instance.<event>.start/end/error`. */
  event: string;
  /** What the instance becomes when the action fails (with a fault). Default: the task cleared. */
  onError?: StateChange;
  /** Whether a failure is announced as `instance.<event>.error` (nova sends none for a delete). Default true. */
  errorEvent?: boolean;
  /**
   * How success reaches the control plane: `save` (default) is one save guarded by the task
   * state, written there before the local record so a refusal leaves the record untouched;
   * `deleted` closes the authority's record after the local one is marked deleted, so a
   * redelivered delete finds it deleted and only closes the authority's record again.
   */
  commit?: 'save' | 'deleted';
}

const TO_ERROR: StateChange = { vm_state: 'error', task_state: null, power_state: PowerState.NOSTATE };

export const TRANSITIONS: Readonly<Record<InstanceActionName, Transition>> = {
  create: { from: ['building'], task: 'spawning', to: { vm_state: 'active', power_state: PowerState.RUNNING }, event: 'create', onError: TO_ERROR },
  delete: {
    from: 'any',
    task: 'deleting',
    to: { vm_state: 'deleted', power_state: PowerState.NOSTATE },
    event: 'delete',
    onError: { vm_state: 'error', task_state: null },
    errorEvent: false,
    commit: 'deleted',
  },
  stop: { from: ['active', 'error'], task: 'powering-off', to: { vm_state: 'stopped', power_state: PowerState.SHUTDOWN }, event: 'power_off' },
  start: { from: ['stopped'], task: 'powering-on', to: { vm_state: 'active', power_state: PowerState.RUNNING }, event: 'power_on' },
  reboot: { from: ['active'], task: 'rebooting', to: { vm_state: 'active', power_state: PowerState.RUNNING }, event: 'reboot' },
  reboot_hard: {
    from: ['active', 'stopped', 'paused', 'suspended', 'error'],
    task: 'rebooting_hard',
    to: { vm_state: 'active', power_state: PowerState.RUNNING },
    event: 'reboot',
  },
  pause: { from: ['active'], task: 'pausing', to: { vm_state: 'paused', power_state: PowerState.PAUSED }, event: 'pause' },
  unpause: { from: ['paused'], task: 'unpausing', to: { vm_state: 'active', power_state: PowerState.RUNNING }, event: 'unpause' },
  suspend: { from: ['active'], task: 'suspending', to: { vm_state: 'suspended', power_state: PowerState.SUSPENDED }, event: 'suspend' },
  resume: { from: ['suspended'], task: 'resuming', to: { vm_state: 'active', power_state: PowerState.RUNNING }, event: 'resume' },
  rebuild: { from: ['active', 'stopped', 'error'], task: 'rebuilding', to: { vm_state: 'active', power_state: PowerState.RUNNING }, event: 'rebuild' },
  // rebuild_instance with recreate (nova's evacuate): the instance booted again from its image on
  // this node after its host went down. A failure leaves it in error, as nova's
  // _error_out_instance_on_exception does; nova announces it as a rebuild.
  evacuate: {
    from: ['active', 'stopped', 'error'],
    fromTask: [null, 'rebuilding'],
    task: 'rebuilding',
    to: { vm_state: 'active', power_state: PowerState.RUNNING },
    event: 'rebuild',
    onError: { vm_state: 'error', task_state: null },
  },
  createImage: { from: ['active', 'stopped', 'paused', 'suspended'], task: 'image_snapshot', to: 'unchanged', event: 'snapshot' },
  backup: { from: ['active', 'stopped', 'paused', 'suspended'], task: 'image_backup', to: 'unchanged', event: 'snapshot' },
  // Resize on the same host (nova's prep_resize → resize_instance → finish_resize, then
  // confirm_resize or revert_resize): the container's limits change in place, so the guest
  // keeps its power state throughout. Each step is its own message and its own row.
  resize_prep: {
    from: ['active', 'stopped'],
    fromTask: [null, 'resize_prep'],
    task: 'resize_prep',
    to: { task_state: 'resize_prep' },
    event: 'resize_prep',
  },
  resize: {
    from: ['active', 'stopped'],
    fromTask: ['resize_prep'],
    task: 'resize_migrating',
    claim: ['resize_prep'],
    to: { task_state: 'resize_migrated' },
    event: 'resize',
  },
  resize_finish: {
    from: ['active', 'stopped'],
    fromTask: ['resize_migrated'],
    task: 'resize_finish',
    claim: ['resize_migrated'],
    to: { vm_state: 'resized', power_state: 'kept' },
    event: 'resize_finish',
    // nova's _error_out_instance_on_exception without a state to restore: the guest may be half-changed.
    onError: { vm_state: 'error', task_state: null },
  },
  resize_confirm: { from: ['resized'], task: null, to: 'by-power', event: 'resize_confirm' },
  // Soft delete (nova's [DEFAULT] reclaim_instance_interval): the container is stopped and kept,
  // its claim too, until restored or deleted. A paused or suspended instance is refused here.
  soft_delete: {
    from: ['active', 'stopped', 'error'],
    fromTask: [null, 'soft-deleting'],
    task: 'soft-deleting',
    to: { vm_state: 'soft-delete', power_state: PowerState.SHUTDOWN },
    event: 'soft_delete',
  },
  restore: {
    from: ['soft-delete'],
    fromTask: [null, 'restoring'],
    task: 'restoring',
    to: { vm_state: 'active', power_state: PowerState.RUNNING },
    event: 'restore',
  },
  // nova's trigger_crash_dump changes no state (ALLOW_TRIGGER_CRASH_DUMP); the agent sends SIGQUIT.
  trigger_crash_dump: { from: ['active', 'paused', 'resized', 'error'], task: null, to: 'unchanged', event: 'trigger_crash_dump', errorEvent: false },
  resize_revert: { from: ['resized'], fromTask: [null, 'resize_reverting'], task: 'resize_reverting', to: 'by-power', event: 'resize_revert' },
  // Shelve (nova's shelve_instance, shelve_offload_instance, unshelve_instance; driver/compute/shelve.ts).
  // nova-api sets the task state before casting; nova sends no `.error` notification for any of
  // them (a failure is the fault and the instance action), and reverts_task_state clears the task.
  shelve: {
    from: ['active', 'stopped', 'paused', 'suspended'],
    fromTask: [null, 'shelving'],
    task: 'shelving',
    to: { vm_state: 'shelved', power_state: PowerState.SHUTDOWN },
    event: 'shelve',
    errorEvent: false,
  },
  shelve_offload: {
    from: ['shelved'],
    fromTask: [null, 'shelving_offloading'],
    task: 'shelving_offloading',
    to: { vm_state: 'shelved_offloaded', power_state: PowerState.SHUTDOWN },
    event: 'shelve_offload',
    errorEvent: false,
  },
  // Boots the instance again from its shelved snapshot on the host the scheduler chose. A failure
  // leaves it shelved_offloaded (nova nils out host and node and reverts the task state).
  unshelve: {
    from: ['shelved_offloaded'],
    fromTask: [null, 'unshelving', 'spawning'],
    task: 'spawning',
    claim: [null, 'unshelving', 'spawning'],
    to: { vm_state: 'active', power_state: PowerState.RUNNING },
    event: 'unshelve',
    errorEvent: false,
  },
  // Unshelve of an instance still on its host (not offloaded): nova's conductor sends
  // start_instance with task powering-on, which starts the stopped container again.
  start_shelved: {
    from: ['shelved'],
    fromTask: [null, 'powering-on'],
    task: 'powering-on',
    to: { vm_state: 'active', power_state: PowerState.RUNNING },
    event: 'power_on',
  },
  // nova-api's guards for attach_interface / detach_interface; no task state while they run.
  attach_interface: { from: ['active', 'paused', 'stopped'], task: null, to: 'unchanged', event: 'interface_attach' },
  detach_interface: { from: ['active', 'paused', 'stopped'], task: null, to: 'unchanged', event: 'interface_detach' },
};

/**
 * The ends of a record that are not this node's actions: the authority (the control plane) has
 * removed the server already, so the node only records it gone. Nothing goes to the control
 * plane, no instance action is opened and nothing is announced: nova did each of those when it
 * deleted the server. Lifecycle.removed records a row; the caller does the effect first (the
 * reaper removes the container, an abandoned build never made one).
 */
export type RemovalName = 'claim_refused' | 'deleted_elsewhere' | 'evacuated';

export interface Removal {
  /** The state the record lands in; it is marked deleted, with `deleted_at`. */
  to: StateChange & { vm_state: 'deleted' };
  /** Whether `terminated_at` is stamped too (a container had run). */
  terminated: boolean;
  /** What the node's log says, and at which level. */
  log: { level: 'info' | 'warn'; message: string };
}

export const REMOVALS: Readonly<Record<RemovalName, Removal>> = {
  // nova's guarded build saves refused: the server was deleted before this node claimed it.
  claim_refused: {
    to: { vm_state: 'deleted', task_state: null },
    terminated: false,
    log: { level: 'info', message: 'build abandoned: the control plane refused the claim (deleted meanwhile?)' },
  },
  // nova deleted a down node's server by itself; the node reaps it when it is back.
  deleted_elsewhere: {
    to: { vm_state: 'deleted', task_state: null, power_state: PowerState.NOSTATE },
    terminated: true,
    log: { level: 'warn', message: 'the control plane deleted this instance while the node was away; its container is removed' },
  },
  // The instance was evacuated to another node while this one was down (nova's
  // _destroy_evacuated_instances); the node's own record of it ends here.
  evacuated: {
    to: { vm_state: 'deleted', task_state: null, power_state: PowerState.NOSTATE },
    terminated: true,
    log: { level: 'warn', message: 'the instance was evacuated to another host while this node was down; its container here is removed' },
  },
};

/** The state a successful action leaves: its `to`, the task cleared (or handed on), for a guest now in `power`. */
export function finalState(t: Transition, power: number): StateChange {
  const to = t.to;
  if (to === 'unchanged') return { task_state: null };
  if (to === 'by-power') return { vm_state: power === PowerState.SHUTDOWN ? 'stopped' : 'active', power_state: power, task_state: null };
  if ('task_state' in to) return { task_state: to.task_state };
  return { vm_state: to.vm_state, power_state: to.power_state === 'kept' ? power : to.power_state, task_state: null };
}

/**
 * The power-state sync's rows (nova's _sync_power_states, for an instance with no task): the
 * first rule whose observed power state and vm_state match decides the vm_state; none matching
 * keeps it. The record takes the observed power state either way.
 */
export interface DriftRule {
  observed: readonly number[];
  from: readonly VmState[] | 'any';
  to: VmState;
  /** A fault recorded with the correction. */
  fault?: { code: number; exception: string; message: (uuid: string) => string };
}

export const DRIFT: readonly DriftRule[] = [
  {
    observed: [PowerState.NOSTATE],
    from: 'any',
    to: 'error',
    fault: { code: 404, exception: 'InstanceNotFound', message: (uuid) => `The container of instance ${uuid} vanished from the host.` },
  },
  { observed: [PowerState.SHUTDOWN, PowerState.CRASHED], from: ['active', 'paused', 'suspended'], to: 'stopped' },
  { observed: [PowerState.RUNNING], from: ['stopped'], to: 'active' },
];

/** The agent's power state as nova's power_state number; a container the agent does not list is NOSTATE. */
export function observedPower(status: Pick<InstanceStatus, 'power_state'> | null): number {
  if (status === null) return PowerState.NOSTATE;
  return (
    { running: PowerState.RUNNING, paused: PowerState.PAUSED, stopped: PowerState.SHUTDOWN, crashed: PowerState.CRASHED, missing: PowerState.NOSTATE } as const
  )[status.power_state];
}

/** The drift row for an instance in `vmState` whose container reports `power`, if any matches. */
export function driftRule(vmState: VmState, power: number): DriftRule | undefined {
  return DRIFT.find((r) => r.observed.includes(power) && (r.from === 'any' || r.from.includes(vmState)));
}

export function canStart(action: InstanceActionName, vmState: VmState, taskState: TaskState | null): boolean {
  const t = TRANSITIONS[action];
  if (vmState === 'deleted') return false;
  if (action !== 'delete' && !(t.fromTask ?? [null]).includes(taskState)) return false;
  return t.from === 'any' || t.from.includes(vmState);
}

const POWER_NAMES: Record<number, string> = { 0: 'pending', 1: 'running', 3: 'paused', 4: 'shutdown', 6: 'crashed', 7: 'suspended' };
/** The power_state string notifications carry. */
export function powerStateName(p: number): string {
  return POWER_NAMES[p] ?? 'pending';
}
