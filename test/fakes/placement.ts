import { BerthError } from '../../common/errors.js';
import { driverError } from '../../driver/errors.js';
import type { HostResources } from '../../driver/compute/resources.js';
import { inventoriesOf, type PlacementClient } from '../../driver/nova/placement.js';

/** The os-traits names Berth uses; Placement refuses a standard trait it does not know. */
export const STANDARD_TRAITS = ['COMPUTE_NODE', 'COMPUTE_IMAGE_TYPE_RAW', 'COMPUTE_STATUS_DISABLED'];

/** The error HttpPlacement gives for a status it does not expect (Placement's body has no Berth code). */
const upstream = (what: string, status: number) =>
  new BerthError('UPSTREAM_ERROR', `placement ${what}: HTTP ${status}`, { status: 502, retryable: status >= 500 });

/**
 * Placement's resource providers, inventories, traits and allocations, in memory, behaving as
 * HttpPlacement against the real service does (test/conformance/placement.ts): unknown providers
 * and unknown standard traits are errors, names are unique, an unchanged inventory costs no generation.
 */
export class FakePlacement implements PlacementClient {
  readonly providers = new Map<string, { name: string; generation: number; inventories: Record<string, Record<string, number>>; traits: string[] }>();
  readonly allocations = new Map<string, Record<string, number>>();
  /** The provider a consumer's allocations are on, when a test said (a consumer here holds on one provider). */
  readonly allocationProvider = new Map<string, string>();
  /** Traits Placement knows; tests may add to it. CUSTOM_ traits are added by setTraits, as HttpPlacement creates them. */
  readonly knownTraits = new Set(STANDARD_TRAITS);

  async ensureProvider(uuid: string, name: string): Promise<number> {
    const existing = this.providers.get(uuid);
    if (existing) return existing.generation;
    if ([...this.providers.values()].some((p) => p.name === name)) {
      throw driverError('PLACEMENT_CONFLICT', `placement already has a resource provider named ${name} with another uuid`);
    }
    this.providers.set(uuid, { name, generation: 0, inventories: {}, traits: [] });
    return 0;
  }

  private must(uuid: string, what: string) {
    const p = this.providers.get(uuid);
    if (!p) throw upstream(`${what} resource_providers/${uuid}`, 404);
    return p;
  }

  async setInventory(uuid: string, resources: HostResources): Promise<void> {
    const p = this.must(uuid, 'GET');
    const inventories = inventoriesOf(resources);
    if (JSON.stringify(inventories) === JSON.stringify(p.inventories)) return;
    p.inventories = inventories;
    p.generation++;
  }

  async getTraits(uuid: string): Promise<string[]> {
    return [...this.must(uuid, 'GET').traits];
  }

  async setTraits(uuid: string, traits: string[]): Promise<void> {
    const p = this.must(uuid, 'GET');
    for (const t of traits) if (t.startsWith('CUSTOM_')) this.knownTraits.add(t);
    if (traits.some((t) => !this.knownTraits.has(t))) throw upstream(`PUT resource_providers/${uuid}/traits`, 400);
    p.traits = [...new Set(traits)].sort();
    p.generation++;
  }

  async deleteAllocations(consumer: string): Promise<void> {
    this.allocations.delete(consumer);
  }

  async removeProviderAllocations(consumer: string, provider: string): Promise<boolean> {
    const held = this.allocations.get(consumer);
    if (!held || !Object.keys(held).length || (this.allocationProvider.get(consumer) ?? provider) !== provider) return false;
    this.allocations.delete(consumer);
    this.allocationProvider.delete(consumer);
    return true;
  }

  async moveAllocations(source: string, target: string): Promise<boolean> {
    const held = this.allocations.get(source);
    if (!held || !Object.keys(held).length) return false;
    this.allocations.set(target, { ...held });
    this.allocations.delete(source);
    return true;
  }
}
