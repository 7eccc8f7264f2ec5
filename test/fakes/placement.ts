import type { HostResources } from '../../driver/compute/resources.js';
import { inventoriesOf, type PlacementClient } from '../../driver/nova/placement.js';

/** Placement's resource providers, inventories, traits and allocations, in memory. */
export class FakePlacement implements PlacementClient {
  readonly providers = new Map<string, { name: string; generation: number; inventories: Record<string, Record<string, number>>; traits: string[] }>();
  readonly allocations = new Map<string, Record<string, number>>();

  async ensureProvider(uuid: string, name: string): Promise<number> {
    const p = this.providers.get(uuid) ?? { name, generation: 0, inventories: {}, traits: [] };
    this.providers.set(uuid, p);
    return p.generation;
  }

  private must(uuid: string) {
    const p = this.providers.get(uuid);
    if (!p) throw new Error(`no resource provider ${uuid}`);
    return p;
  }

  async setInventory(uuid: string, resources: HostResources): Promise<void> {
    const p = this.must(uuid);
    p.inventories = inventoriesOf(resources);
    p.generation++;
  }

  async getTraits(uuid: string): Promise<string[]> { return [...this.must(uuid).traits]; }

  async setTraits(uuid: string, traits: string[]): Promise<void> {
    const p = this.must(uuid);
    p.traits = [...new Set(traits)].sort();
    p.generation++;
  }

  async deleteAllocations(consumer: string): Promise<void> { this.allocations.delete(consumer); }
}
