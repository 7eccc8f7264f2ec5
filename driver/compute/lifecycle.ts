import type { InstanceStatus } from '../../agent/client/types.js';
import { BerthError, describeError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { InstanceActionRow, InstanceRow, TaskState, VmState } from '../db/models.js';
import type { Notifier } from '../notify/notifier.js';
import type { FaultInfo, PayloadInput } from '../notify/payload.js';
import type { RequestContext } from '../rpc/envelope.js';
import { RpcFailure } from '../rpc/failure.js';
import type { ControlPlane, InstanceSave } from './control-plane.js';
import {
  driftRule,
  finalState,
  observedPower,
  REMOVALS,
  TRANSITIONS,
  type InstanceActionName,
  type RemovalName,
  type StateChange,
  type Transition,
} from './states.js';
import type { InstanceChanges, InstanceStore } from './store.js';

/**
 * Records the instance lifecycle, driven by the transition table (states.ts): each step of an
 * action is written once, here, to every sink in nova's order (docs/architecture.md, "The
 * instance lifecycle"). The sinks: the instance record (store), the control plane (the authority
 * for instances), the instance action and its result, and the notifications.
 */
export interface LifecycleSinks {
  store: Pick<InstanceStore, 'update' | 'addFault' | 'startAction' | 'finishAction'>;
  plane: Pick<ControlPlane, 'saveInstance' | 'addFault' | 'instanceDeleted' | 'refused'>;
  notifier: Pick<Notifier, 'instance'>;
  log: Logger;
}

export type Fault = FaultInfo & { code: number };

/** Nova exception names for the agent's error codes, so a fault reads as nova's would. */
const FAULT_NAMES: Record<string, [string, number]> = {
  IMAGE_NOT_FOUND: ['ImageNotFound', 404],
  IMAGE_FETCH_FAILED: ['ImageUnacceptable', 400],
  SERVICE_UNREACHABLE: ['ComputeServiceUnavailable', 503],
  SERVICE_TIMEOUT: ['ComputeServiceUnavailable', 503],
  RUNTIME_UNAVAILABLE: ['HypervisorUnavailable', 503],
  PORT_BINDING_FAILED: ['PortBindingFailed', 400],
  PORT_IN_USE: ['PortInUse', 409],
};

/** The instance fault an error is recorded as. */
export function faultOf(err: unknown): Fault {
  if (err instanceof RpcFailure) return { exception: err.className, message: err.message, code: Number(err.kwargs.code ?? 500) };
  if (err instanceof BerthError) {
    const [name, code] = FAULT_NAMES[err.code] ?? ['NovaException', err.status >= 400 ? err.status : 500];
    return { exception: name, message: err.message, code };
  }
  return { exception: 'NovaException', message: describeError(err), code: 500 };
}

/** One action on one instance, from begin to succeed or fail. */
export interface Run {
  ctx: RequestContext;
  row: InstanceRow;
  name: InstanceActionName;
  /** The instance action record; null when the action failed before it began (fail opens one). */
  action: InstanceActionRow | null;
  /** Extra payload fields of the action's notifications. */
  extra?: Pick<PayloadInput, 'snapshotImageId'>;
  /**
   * Where success leaves the instance instead of the transition's `to`, when the action decides
   * it as it runs (a rebuild of a stopped instance leaves it stopped, as nova's does).
   */
  to?: { vm_state: VmState; power_state: number; task_state?: TaskState | null };
}

/** Fields saved with a transition's own state (the launch or termination time, a resize's flavors, a shelve's system_metadata). */
export type Stamps = Pick<
  InstanceSave,
  | 'launched_at'
  | 'terminated_at'
  | 'flavor'
  | 'old_flavor'
  | 'new_flavor'
  | 'vcpus'
  | 'memory_mb'
  | 'root_gb'
  | 'ephemeral_gb'
  | 'instance_type_id'
  | 'system_metadata'
  | 'host'
  | 'node'
>;

export class Lifecycle {
  constructor(private readonly s: LifecycleSinks) {}

  /** The notification payload of an instance as recorded. */
  payload(row: InstanceRow, ctx: RequestContext, fault: FaultInfo | null = null): PayloadInput {
    return {
      row,
      fault,
      requestId: (ctx.request_id as string | undefined) ?? null,
      initiatorUser: (ctx.user_id as string | null | undefined) ?? null,
      initiatorProject: (ctx.project_id as string | null | undefined) ?? null,
    };
  }

  private notify(run: Run, t: Transition, phase: 'start' | 'end' | 'error', fault: FaultInfo | null = null): Promise<void> {
    return this.s.notifier.instance(run.ctx, t.event, phase, { ...this.payload(run.row, run.ctx, fault), ...run.extra });
  }

  /** Mirrors a change to the authority without failing the caller (used on paths already failing). */
  private async mirror(ctx: RequestContext, uuid: string, changes: InstanceSave, fault?: Fault): Promise<void> {
    try {
      if (fault) await this.s.plane.addFault(ctx, uuid, { code: fault.code, message: fault.message, exception: fault.exception });
      await this.s.plane.saveInstance(ctx, uuid, changes);
    } catch (err) {
      this.s.log.warn({ instance: uuid, err: describeError(err) }, 'could not record the change with the control plane');
    }
  }

  /** An action begins: the instance action opened, its task state on the record, `<event>.start`. */
  async begin(ctx: RequestContext, row: InstanceRow, name: InstanceActionName, extra?: Run['extra']): Promise<Run> {
    const t = TRANSITIONS[name];
    // A step that takes the instance from the authority's task goes there first: a refusal stops it here.
    if (t.claim && t.task) await this.s.plane.saveInstance(ctx, row.uuid, { task_state: t.task }, [...t.claim]);
    const run: Run = { ctx, row, name, action: await this.s.store.startAction(row.uuid, name, ctx), ...(extra ? { extra } : {}) };
    // A build is recorded already spawning; nova-api set the others' task on its own record.
    if (row.task_state !== t.task) await this.s.store.update(row, { task_state: t.task });
    await this.notify(run, t, 'start');
    return run;
  }

  /** The task state moves on within an action: the authority first (guarded by the task it had), then the record. */
  async progress(run: Run, task: NonNullable<StateChange['task_state']>, expected: string | null = run.row.task_state): Promise<void> {
    await this.s.plane.saveInstance(run.ctx, run.row.uuid, { task_state: task }, expected);
    await this.s.store.update(run.row, { task_state: task });
  }

  /**
   * The action succeeded: its final state (with `stamps`; the times also on the record, the
   * flavor fields to the authority only) to the authority and the record in the order of its
   * `commit`, `local` to the record only, the action closed Success, `<event>.end`.
   */
  async succeed(run: Run, stamps: Stamps = {}, local: InstanceChanges = {}): Promise<void> {
    const t = TRANSITIONS[run.name];
    const { ctx, row } = run;
    const { launched_at, terminated_at, ...planeOnly } = stamps;
    const times = { ...(launched_at ? { launched_at } : {}), ...(terminated_at ? { terminated_at } : {}) };
    const final = { ...finalState(t, run.row.power_state), ...(run.to ?? {}), ...times };
    if (t.commit === 'deleted') {
      await this.s.store.update(row, { ...final, ...local });
      await this.s.plane.instanceDeleted(ctx, row.uuid);
    } else {
      // nova-api set the task state before casting; the last task state seen here is the guard.
      await this.s.plane.saveInstance(ctx, row.uuid, { ...final, ...planeOnly }, row.task_state);
      await this.s.store.update(row, { ...final, ...local });
    }
    if (run.action) await this.s.store.finishAction(run.action, 'Success');
    await this.notify(run, t, 'end');
  }

  /**
   * The action failed: the fault variant of every sink. The fault and the row's `onError` state on
   * the record, the action closed Error, both mirrored to the authority (unless its guard was the
   * failure: the instance is being changed there), `<event>.error`. Returns the fault.
   */
  async fail(run: Run, err: unknown): Promise<Fault> {
    const t = TRANSITIONS[run.name];
    const { ctx, row } = run;
    const fault = faultOf(err);
    run.action ??= await this.s.store.startAction(row.uuid, run.name, ctx);
    const onError = t.onError ?? { task_state: null };
    await this.s.store.addFault(row.uuid, fault.code, fault.message, fault.exception);
    await this.s.store.update(row, onError);
    await this.s.store.finishAction(run.action, 'Error', fault.message);
    if (!this.s.plane.refused(err)) await this.mirror(ctx, row.uuid, onError, fault);
    if (t.errorEvent !== false) await this.notify(run, t, 'error', fault);
    return fault;
  }

  /**
   * The record of a server the authority removed already (a REMOVALS row): logged, then the row's
   * state, deleted, on the record only. `detail` goes into the log line.
   */
  async removed(row: InstanceRow, name: RemovalName, detail: Record<string, unknown> = {}): Promise<void> {
    const r = REMOVALS[name];
    this.s.log[r.log.level]({ instance: row.uuid, ...detail }, r.log.message);
    const now = new Date();
    await this.s.store.update(row, { ...r.to, deleted: true, deleted_at: now, ...(r.terminated ? { terminated_at: now } : {}) });
  }

  /**
   * The power-state sync's correction of one idle instance (the DRIFT rows): the vm_state the
   * matching row gives and the observed power state, with the row's fault, recorded then mirrored,
   * announced as instance.update. False when the record already agrees.
   */
  async drift(row: InstanceRow, status: InstanceStatus | null): Promise<boolean> {
    const power = observedPower(status);
    const rule = driftRule(row.vm_state, power);
    const vm = rule?.to ?? row.vm_state;
    if (vm === row.vm_state && power === row.power_state) return false;
    const oldState = row.vm_state;
    this.s.log.warn({ instance: row.uuid, vm_state: [oldState, vm], power_state: [row.power_state, power] }, 'correcting power-state drift');
    if (rule?.fault) await this.s.store.addFault(row.uuid, rule.fault.code, rule.fault.message(row.uuid), rule.fault.exception);
    await this.s.store.update(row, { vm_state: vm, power_state: power });
    const ctx: RequestContext = { request_id: `req-sync-${row.uuid}` };
    await this.mirror(ctx, row.uuid, { vm_state: vm, power_state: power });
    await this.s.notifier.instance(ctx, 'update', null, {
      ...this.payload(row, ctx),
      stateUpdate: { old_state: oldState, state: vm, old_task_state: null, new_task_state: null },
    });
    return true;
  }
}
