import { KeyedMutex } from '../../common/keyed-mutex.js';
import type { InstanceRow } from '../db/models.js';
import { decodeFlavor, type Instance } from '../objects/instance.js';
import type { NodeUsage } from './control-plane.js';
import { capacity, checkClaim, claimOf, sumUsage, type HostResources, type Usage } from './resources.js';
import { countsTowardUsage, type InstanceStore } from './store.js';

/**
 * What the instances of this node claim, and the claim of a new build: checked and recorded under
 * one lock, so concurrent builds cannot both take the last slot.
 */
export class Claims {
  private readonly lock = new KeyedMutex();
  /** The usage a claim is checked against, and the store's usage version it holds for. */
  private cache: { version: number; usage: Usage } | null = null;

  constructor(
    private readonly store: InstanceStore,
    private readonly host: string,
    private readonly node: string,
    private readonly resources: HostResources,
  ) {}

  /**
   * What the instances of this node claim: all not deleted, except builds that never ran; and
   * each open resize's other flavor (nova's move claim: until it is confirmed or reverted, a
   * same-host resize holds both the old and the new flavor).
   */
  async usage(): Promise<Usage> {
    const rows = (await this.store.listActive(this.host)).filter(countsTowardUsage);
    const live = new Set(rows.map((r) => r.uuid));
    const open = await this.store.openMigrations(this.host);
    // Same host: until finish_resize the instance carries the old flavor and the move the new;
    // after, the reverse. A move records nova's Flavor primitives.
    const held = open
      .filter((m) => m.source_compute === m.dest_compute && live.has(m.instance_uuid))
      .map((m) => decodeFlavor(JSON.parse(m.status === 'finished' ? m.old_flavor : m.new_flavor), 'migration.flavor'));
    // Between nodes (nova's move claims at source and destination): each end holds its flavor
    // while the instance's record is not on it (the destination's new one before finish_resize,
    // the source's old one after it), until the move is confirmed or reverted.
    for (const m of open) {
      if (m.source_compute === m.dest_compute || live.has(m.instance_uuid)) continue;
      held.push(decodeFlavor(JSON.parse(m.dest_compute === this.host ? m.new_flavor : m.old_flavor), 'migration.flavor'));
    }
    return sumUsage([...rows.map((r) => JSON.parse(r.flavor) as Instance['flavor']), ...held].map(claimOf));
  }

  /**
   * A move claim (nova's resize_claim): the new flavor checked against what the node has left,
   * then the move recorded (`insert`) under the claims lock. Throws ComputeResourcesUnavailable
   * and records nothing when it does not fit.
   */
  async moveClaim<T>(flavor: Instance['flavor'], insert: () => Promise<T>): Promise<T> {
    return this.lock.run('claims', async () => {
      checkClaim(this.resources, (await this.claimedUsage()).usage, claimOf(flavor));
      return insert();
    });
  }

  /**
   * The claim of an instance that counts toward this host's usage already (an unshelve, whose
   * record took this host and task spawning): checked against what the others leave, under the
   * claims lock. Throws ComputeResourcesUnavailable when it does not fit.
   */
  async heldClaim(flavor: Instance['flavor']): Promise<void> {
    await this.lock.run('claims', async () => {
      const own = claimOf(flavor);
      const used = await this.usage();
      checkClaim(this.resources, { VCPU: used.VCPU - own.VCPU, MEMORY_MB: used.MEMORY_MB - own.MEMORY_MB, DISK_GB: used.DISK_GB - own.DISK_GB }, own);
    });
  }

  /**
   * usage(), read again only when a row started or stopped counting since the last read: with a
   * hundred builds arriving together, each would otherwise read every instance of the node while
   * holding the claims lock.
   */
  private async claimedUsage(): Promise<{ version: number; usage: Usage }> {
    const version = this.store.usageVersion;
    if (this.cache?.version === version) return this.cache;
    // A change while reading moves the version on, and the next claim reads again.
    this.cache = { version, usage: await this.usage() };
    return this.cache;
  }

  /**
   * Checks the flavor's claim and records the build (`insert`) under the claims lock. The build is
   * recorded even when the claim fails (it then fails with that fault): `failure` says why.
   */
  async claim(
    flavor: Instance['flavor'],
    insert: () => Promise<{ row: InstanceRow; created: boolean }>,
  ): Promise<{ row: InstanceRow; created: boolean; failure: unknown }> {
    return this.lock.run('claims', async () => {
      const claim = claimOf(flavor);
      const used = await this.claimedUsage();
      let failure: unknown = null;
      try {
        checkClaim(this.resources, used.usage, claim);
      } catch (err) {
        failure = err;
      }
      const inserted = await insert();
      // Only this insert moved the version: the usage it read plus this claim is the usage now.
      if (inserted.created && !failure && this.store.usageVersion === used.version + 1) {
        this.cache = { version: used.version + 1, usage: sumUsage([used.usage, claim]) };
      }
      return { ...inserted, failure };
    });
  }

  /** The ComputeNode counters a control plane publishes. */
  async nodeUsage(): Promise<NodeUsage> {
    const used = await this.usage();
    // A shelved and offloaded instance is on no host (the record keeps the node it left, for listing).
    const rows = (await this.store.listActive(this.host)).filter((r) => r.vm_state !== 'shelved_offloaded');
    return {
      vcpus_used: used.VCPU,
      memory_mb_used: used.MEMORY_MB,
      local_gb_used: used.DISK_GB,
      running_vms: rows.length,
      current_workload: rows.filter((r) => r.task_state !== null || r.vm_state === 'building').length,
    };
  }

  /** Capacity, usage and free amounts per resource class (what a scheduler needs). */
  async hostCapacity(): Promise<Record<string, unknown>> {
    const used = await this.usage();
    const resources: Record<string, unknown> = {};
    for (const rc of ['VCPU', 'MEMORY_MB', 'DISK_GB'] as const) {
      const inv = this.resources[rc];
      resources[rc] = { ...inv, capacity: capacity(inv), used: used[rc], free: capacity(inv) - used[rc] };
    }
    const rows = await this.store.listActive(this.host);
    return { host: this.host, node: this.node, hypervisor_type: 'docker', resources, instances: rows.length, updated_at: new Date().toISOString() };
  }
}
