import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { BerthError } from '../../common/errors.js';
import type { HostResources } from '../../driver/compute/resources.js';
import { inventoriesOf, type PlacementClient } from '../../driver/nova/placement.js';

/** A provider as Placement itself holds it, read without the client under test. */
export interface ProviderInspector {
  /** The provider's generation, or null when Placement has no such provider. */
  generation(uuid: string): Promise<number | null>;
  /** Resource class → total, reserved, min_unit, max_unit, step_size, allocation_ratio. */
  inventories(uuid: string): Promise<Record<string, Record<string, number>>>;
  traits(uuid: string): Promise<string[]>;
  /**
   * Gives `consumer` an allocation of `resources` on the provider `uuid`, as a scheduler would;
   * `untyped`: without a consumer type, as nova's Zed scheduler and conductor write them
   * (microversion 1.28; Placement then reads the type as `unknown`).
   */
  allocate(consumer: string, uuid: string, resources: Record<string, number>, opts?: { untyped?: boolean }): Promise<void>;
  /** Resource class → amount `consumer` holds, over every provider; {} when none. */
  allocations(consumer: string): Promise<Record<string, number>>;
}

/** What the suite needs from a Placement under test. */
export interface PlacementHarness {
  placement: PlacementClient;
  /** A provider uuid and name no provider has yet; the suite creates it. */
  uuid: string;
  name: string;
  /** A CUSTOM_ trait that does not exist yet; setTraits must create it. */
  customTrait: string;
  inspect: ProviderInspector;
  /** Removes the provider and the custom trait, whatever state they were left in. */
  cleanup(): Promise<void>;
}

/**
 * All VCPU is reserved (allowed since microversion 1.26), so a real scheduler can never find the
 * provider as an allocation candidate while the suite runs.
 */
const RESOURCES: HostResources = {
  VCPU: { total: 2, reserved: 2, allocation_ratio: 16 },
  MEMORY_MB: { total: 2048, reserved: 512, allocation_ratio: 1.5 },
  DISK_GB: { total: 10, reserved: 1, allocation_ratio: 1 },
};

async function rejectsWithCode(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof BerthError, `expected a BerthError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  });
}

/**
 * One suite for every PlacementClient: the calls a node makes for its own resource provider
 * (nova-control-plane.md §5.4), so the fake cannot drift from Placement. Cases run in order on one
 * provider, as a node's registration does.
 */
export function placementConformance(name: string, makeHarness: () => Promise<PlacementHarness>): void {
  describe(`PlacementClient conformance: ${name}`, function () {
    // Each real case reads back through the openstack client, several seconds a call on a loaded machine.
    this.timeout(180_000);
    let h: PlacementHarness;
    let p: PlacementClient;

    before(async () => {
      h = await makeHarness();
      p = h.placement;
    });
    after(async () => {
      await h?.cleanup();
    });

    it('calls about a provider that does not exist fail', async () => {
      assert.equal(await h.inspect.generation(h.uuid), null);
      await rejectsWithCode(p.setInventory(h.uuid, RESOURCES), 'UPSTREAM_ERROR');
      await rejectsWithCode(p.getTraits(h.uuid), 'UPSTREAM_ERROR');
    });

    it('ensureProvider creates the provider at generation 0 and is idempotent', async () => {
      assert.equal(await p.ensureProvider(h.uuid, h.name), 0);
      assert.equal(await p.ensureProvider(h.uuid, h.name), 0);
      assert.equal(await h.inspect.generation(h.uuid), 0);
      assert.deepEqual(await p.getTraits(h.uuid), []);
    });

    it('ensureProvider refuses a second uuid under a name already taken', async () => {
      await rejectsWithCode(p.ensureProvider(randomUUID(), h.name), 'PLACEMENT_CONFLICT');
    });

    it('setInventory stores VCPU, MEMORY_MB and DISK_GB with reserved amounts and ratios', async () => {
      await p.setInventory(h.uuid, RESOURCES);
      assert.deepEqual(await h.inspect.inventories(h.uuid), inventoriesOf(RESOURCES));
      const generation = await h.inspect.generation(h.uuid);
      assert.ok(generation !== null && generation > 0);
      assert.equal(await p.ensureProvider(h.uuid, h.name), generation);
    });

    it('a second setInventory with the same data is a no-op; a changed one replaces it', async () => {
      const before = await h.inspect.generation(h.uuid);
      await p.setInventory(h.uuid, { ...RESOURCES });
      assert.equal(await h.inspect.generation(h.uuid), before);
      const bigger = { ...RESOURCES, MEMORY_MB: { ...RESOURCES.MEMORY_MB, total: 4096 } };
      await p.setInventory(h.uuid, bigger);
      assert.deepEqual(await h.inspect.inventories(h.uuid), inventoriesOf(bigger));
    });

    it('setTraits makes the provider carry exactly the given traits, creating a CUSTOM_ one', async () => {
      await p.setTraits(h.uuid, ['COMPUTE_NODE', h.customTrait, 'COMPUTE_NODE']);
      const expected = ['COMPUTE_NODE', h.customTrait].sort();
      assert.deepEqual([...(await p.getTraits(h.uuid))].sort(), expected);
      assert.deepEqual([...(await h.inspect.traits(h.uuid))].sort(), expected);
      await p.setTraits(h.uuid, ['COMPUTE_NODE', 'COMPUTE_STATUS_DISABLED']);
      assert.deepEqual([...(await p.getTraits(h.uuid))].sort(), ['COMPUTE_NODE', 'COMPUTE_STATUS_DISABLED']);
    });

    it('setTraits refuses an unknown standard trait and leaves the traits as they were', async () => {
      await rejectsWithCode(p.setTraits(h.uuid, ['COMPUTE_NODE', 'BERTH_NO_SUCH_TRAIT']), 'UPSTREAM_ERROR');
      assert.deepEqual([...(await p.getTraits(h.uuid))].sort(), ['COMPUTE_NODE', 'COMPUTE_STATUS_DISABLED']);
    });

    it('deleteAllocations of a consumer without allocations succeeds', async () => {
      await p.deleteAllocations(randomUUID());
    });

    it("moveAllocations hands a migration consumer's allocations to the instance, once; deleteAllocations drops them", async () => {
      const [migration, instance] = [randomUUID(), randomUUID()];
      await h.inspect.allocate(migration, h.uuid, { MEMORY_MB: 64 });
      assert.equal(await p.moveAllocations(migration, instance), true);
      assert.deepEqual(await h.inspect.allocations(instance), { MEMORY_MB: 64 });
      assert.deepEqual(await h.inspect.allocations(migration), {});
      assert.equal(await p.moveAllocations(migration, instance), false);
      assert.deepEqual(await h.inspect.allocations(instance), { MEMORY_MB: 64 });
      await p.deleteAllocations(instance);
      assert.deepEqual(await h.inspect.allocations(instance), {});
    });

    it('moveAllocations between consumers nova wrote without a consumer type replaces what the target held', async () => {
      const [migration, instance] = [randomUUID(), randomUUID()];
      await h.inspect.allocate(migration, h.uuid, { MEMORY_MB: 64 }, { untyped: true });
      await h.inspect.allocate(instance, h.uuid, { MEMORY_MB: 128 }, { untyped: true });
      assert.equal(await p.moveAllocations(migration, instance), true);
      assert.deepEqual(await h.inspect.allocations(instance), { MEMORY_MB: 64 });
      assert.deepEqual(await h.inspect.allocations(migration), {});
      await p.deleteAllocations(instance);
    });

    it("removeProviderAllocations drops a consumer's allocations on the provider, once; another provider is not touched", async () => {
      const instance = randomUUID();
      await h.inspect.allocate(instance, h.uuid, { MEMORY_MB: 64 });
      assert.equal(await p.removeProviderAllocations(instance, randomUUID()), false);
      assert.deepEqual(await h.inspect.allocations(instance), { MEMORY_MB: 64 });
      assert.equal(await p.removeProviderAllocations(instance, h.uuid), true);
      assert.deepEqual(await h.inspect.allocations(instance), {});
      assert.equal(await p.removeProviderAllocations(instance, h.uuid), false);
      assert.equal(await p.removeProviderAllocations(randomUUID(), h.uuid), false);
    });
  });
}
