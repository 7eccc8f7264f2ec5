import { randomUUID } from 'node:crypto';
import { placementConformance } from '../../conformance/placement.js';
import { FakePlacement } from '../../fakes/placement.js';

placementConformance('fake', async () => {
  const placement = new FakePlacement();
  const provider = (uuid: string) => placement.providers.get(uuid);
  return {
    placement,
    uuid: randomUUID(),
    name: 'conformance-node',
    customTrait: 'CUSTOM_BERTH_CONFORMANCE',
    inspect: {
      generation: async (uuid) => provider(uuid)?.generation ?? null,
      inventories: async (uuid) => structuredClone(provider(uuid)?.inventories ?? {}),
      traits: async (uuid) => [...(provider(uuid)?.traits ?? [])],
      allocate: async (consumer, uuid, resources) => {
        placement.allocations.set(consumer, { ...resources });
        placement.allocationProvider.set(consumer, uuid);
      },
      allocations: async (consumer) => ({ ...(placement.allocations.get(consumer) ?? {}) }),
    },
    cleanup: async () => {
      placement.providers.clear();
    },
  };
});
