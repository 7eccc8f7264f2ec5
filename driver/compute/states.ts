import { PowerState, type TaskState, type VmState } from '../db/models.js';

/**
 * The lifecycle transition table, with nova's meanings (nova/compute/vm_states.py,
 * task_states.py and the check_instance_state guards of nova/compute/api.py). An action may
 * start only from the listed vm_states with no task in progress; while it runs the instance
 * carries the task_state; when it succeeds it lands in `to`.
 */
export type InstanceActionName = 'create' | 'delete' | 'stop' | 'start' | 'reboot' | 'reboot_hard' | 'pause' | 'unpause'
  | 'suspend' | 'resume' | 'rebuild' | 'createImage' | 'backup';

export interface Transition {
  from: readonly VmState[] | 'any';
  task: TaskState;
  to: { vm_state: VmState; power_state: number } | 'unchanged';
  /** The notification event stem, `instance.<event>.start/end`. */
  event: string;
}

export const TRANSITIONS: Readonly<Record<InstanceActionName, Transition>> = {
  create: { from: ['building'], task: 'spawning', to: { vm_state: 'active', power_state: PowerState.RUNNING }, event: 'create' },
  delete: { from: 'any', task: 'deleting', to: { vm_state: 'deleted', power_state: PowerState.NOSTATE }, event: 'delete' },
  stop: { from: ['active', 'error'], task: 'powering-off', to: { vm_state: 'stopped', power_state: PowerState.SHUTDOWN }, event: 'power_off' },
  start: { from: ['stopped'], task: 'powering-on', to: { vm_state: 'active', power_state: PowerState.RUNNING }, event: 'power_on' },
  reboot: { from: ['active'], task: 'rebooting', to: { vm_state: 'active', power_state: PowerState.RUNNING }, event: 'reboot' },
  reboot_hard: { from: ['active', 'stopped', 'paused', 'suspended', 'error'], task: 'rebooting_hard', to: { vm_state: 'active', power_state: PowerState.RUNNING }, event: 'reboot' },
  pause: { from: ['active'], task: 'pausing', to: { vm_state: 'paused', power_state: PowerState.PAUSED }, event: 'pause' },
  unpause: { from: ['paused'], task: 'unpausing', to: { vm_state: 'active', power_state: PowerState.RUNNING }, event: 'unpause' },
  suspend: { from: ['active'], task: 'suspending', to: { vm_state: 'suspended', power_state: PowerState.SUSPENDED }, event: 'suspend' },
  resume: { from: ['suspended'], task: 'resuming', to: { vm_state: 'active', power_state: PowerState.RUNNING }, event: 'resume' },
  rebuild: { from: ['active', 'stopped', 'error'], task: 'rebuilding', to: { vm_state: 'active', power_state: PowerState.RUNNING }, event: 'rebuild' },
  createImage: { from: ['active', 'stopped', 'paused', 'suspended'], task: 'image_snapshot', to: 'unchanged', event: 'snapshot' },
  backup: { from: ['active', 'stopped', 'paused', 'suspended'], task: 'image_backup', to: 'unchanged', event: 'snapshot' },
};

export function canStart(action: InstanceActionName, vmState: VmState, taskState: TaskState | null): boolean {
  const t = TRANSITIONS[action];
  if (vmState === 'deleted') return false;
  if (action !== 'delete' && taskState !== null) return false;
  return t.from === 'any' || t.from.includes(vmState);
}

const POWER_NAMES: Record<number, string> = { 0: 'pending', 1: 'running', 3: 'paused', 4: 'shutdown', 6: 'crashed', 7: 'suspended' };
/** The power_state string notifications carry. */
export function powerStateName(p: number): string { return POWER_NAMES[p] ?? 'pending'; }
