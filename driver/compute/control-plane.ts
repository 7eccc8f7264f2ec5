import type { RequestContext } from '../rpc/envelope.js';

/** Instance fields the authority keeps, under nova's names. */
export interface InstanceSave {
  vm_state?: string;
  task_state?: string | null;
  power_state?: number;
  /** null: the instance is on no host (shelved and offloaded). */
  host?: string | null;
  node?: string | null;
  launched_on?: string | null;
  /**
   * Keys of nova's system_metadata to set, or to remove (null); keys not named are kept. Nova
   * mode saves the whole merged dict, as nova's Instance.save does.
   */
  system_metadata?: Record<string, string | null>;
  launched_at?: Date;
  terminated_at?: Date;
  /** nova's Flavor primitives (a resize moves them), and the flavor's figures the instance carries. */
  flavor?: unknown;
  old_flavor?: unknown;
  new_flavor?: unknown;
  vcpus?: number;
  memory_mb?: number;
  root_gb?: number;
  ephemeral_gb?: number;
  instance_type_id?: number;
}

/** nova's expected_task_state guard: the save applies only while the task state is one of these. */
export type ExpectedTask = string | null | Array<string | null>;

export interface FaultRecord {
  code: number;
  message: string;
  exception: string;
  details?: string;
}

/** A move (resize, migration) as the authority knows it: nova's Migration primitive in nova mode, null standalone. */
export interface MoveRecord {
  uuid: string;
  nova: unknown;
}

/** The capacity figures a control plane publishes for this node. */
export interface NodeUsage {
  vcpus_used: number;
  memory_mb_used: number;
  local_gb_used: number;
  running_vms: number;
  current_workload: number;
}

/**
 * Who is the authority for instances. The compute manager reports every state change here; the
 * endpoints never know which plane is behind it.
 *
 * - standalone: Berth's own database is the authority; these calls have nothing to do.
 * - nova: a real Nova's database, written through nova-conductor with its guards, plus Placement.
 *
 * A save rejected by the authority's guard throws (nova's UnexpectedTaskStateError): the
 * operation must stop, as nova-compute's would.
 */
export interface ControlPlane {
  readonly mode: 'standalone' | 'nova';
  /** Registers the node and starts liveness reporting; resolves once the node is usable. */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Remembers the instance object an RPC message carried (nova mode echoes it back on save). */
  observe(instance: unknown): void;
  saveInstance(ctx: RequestContext, uuid: string, changes: InstanceSave, expected?: ExpectedTask): Promise<void>;
  /**
   * The start of a build on this node: nova's first saves (building, then host and node, then
   * spawning), each under its guard. Throws as saveInstance does when the authority refuses.
   */
  claimBuild(ctx: RequestContext, uuid: string, where: { host: string; node: string }): Promise<void>;
  /** Whether an error is the authority's guard refusing a save (the instance is being deleted or changed elsewhere). */
  refused(err: unknown): boolean;
  addFault(ctx: RequestContext, uuid: string, fault: FaultRecord): Promise<void>;
  /** The end of a delete: the record marked deleted, the scheduler's claims released, the record destroyed. */
  instanceDeleted(ctx: RequestContext, uuid: string): Promise<void>;
  /**
   * Saves an instance's network_info (nova's network model, a list of VIFs) as its info cache, so
   * `openstack server show` lists its addresses (nova's update_instance_cache_with_nw_info).
   */
  saveNetworkInfo(ctx: RequestContext, uuid: string, networkInfo: unknown[]): Promise<void>;
  /** set_host_enabled: whether the scheduler may place new instances here. */
  setHostEnabled(enabled: boolean): Promise<'enabled' | 'disabled'>;
  /**
   * Which of these instances the authority no longer has: nova deletes the servers of a node that
   * is down by itself ("local delete"), so their containers are left for the node to reap.
   */
  missingInstances(uuids: string[]): Promise<string[]>;
  /**
   * A move's status with the authority (nova's `migration.save()`), with `fields` (the
   * destination's dest_compute and dest_node, as nova's move claim sets them); returns its record
   * as the authority has it now.
   */
  saveMigration(ctx: RequestContext, migration: MoveRecord, status: string, fields?: Record<string, unknown>): Promise<unknown>;
  /** A confirmed move: the allocations its migration consumer holds are released (nova's _delete_allocation_after_move). */
  dropMoveAllocations(ctx: RequestContext, migrationUuid: string): Promise<void>;
  /** A move undone: what its migration consumer holds goes back to the instance (nova's _revert_allocation). */
  revertMoveAllocations(ctx: RequestContext, migrationUuid: string, instanceUuid: string): Promise<void>;
  /**
   * The instance holds nothing on any host any more (a shelve offload, a failed unshelve): its
   * allocations are removed (nova's delete_allocation_for_instance with force).
   */
  releaseAllocations(ctx: RequestContext, instanceUuid: string): Promise<void>;
  /**
   * The evacuations away from `host` the authority records and the host has not cleaned up yet
   * (nova's accepted, pre-migrating or done; none standalone, where Berth's records are the authority).
   */
  evacuationsFrom(host: string): Promise<Array<MoveRecord & { instance_uuid: string }>>;
  /** An instance evacuated away: its allocations on this node's provider released (nova's remove_provider_tree_from_instance_allocation). */
  dropSourceAllocations(instanceUuid: string): Promise<void>;
}

/** Berth's own database is the authority: nothing to mirror. */
export class StandaloneControlPlane implements ControlPlane {
  readonly mode = 'standalone';
  private enabled = true;
  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  observe(): void {}
  async saveInstance(): Promise<void> {}
  async claimBuild(): Promise<void> {}
  refused(): boolean {
    return false;
  }
  async addFault(): Promise<void> {}
  async instanceDeleted(): Promise<void> {}
  async saveNetworkInfo(): Promise<void> {}
  async setHostEnabled(enabled: boolean): Promise<'enabled' | 'disabled'> {
    this.enabled = enabled;
    return this.enabled ? 'enabled' : 'disabled';
  }
  async missingInstances(): Promise<string[]> {
    return [];
  }
  async saveMigration(): Promise<unknown> {
    return null;
  }
  async dropMoveAllocations(): Promise<void> {}
  async revertMoveAllocations(): Promise<void> {}
  async releaseAllocations(): Promise<void> {}
  async evacuationsFrom(): Promise<Array<MoveRecord & { instance_uuid: string }>> {
    return [];
  }
  async dropSourceAllocations(): Promise<void> {}
}
