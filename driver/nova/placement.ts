import { commonError } from '../../common/errors.js';
import { driverError } from '../errors.js';
import { parseEndpoint, requestJson } from '../../common/http-client.js';
import { withSessionToken, type EndpointInterface, type KeystoneSession } from '../../common/keystone/index.js';
import type { HostResources } from '../compute/resources.js';

/** The microversion every request asks for (Zed's placement serves up to 1.39). */
export const PLACEMENT_VERSION = 'placement 1.39';
export const DISABLED_TRAIT = 'COMPUTE_STATUS_DISABLED';

/** The Placement calls a compute node makes for its own resource provider. */
export interface PlacementClient {
  /** Creates the provider if absent; returns its generation. */
  ensureProvider(uuid: string, name: string): Promise<number>;
  /** Sets VCPU, MEMORY_MB and DISK_GB from the resource tracker (no request when unchanged). */
  setInventory(uuid: string, resources: HostResources): Promise<void>;
  /** Makes the provider carry exactly `traits` (custom traits are created first). */
  setTraits(uuid: string, traits: string[]): Promise<void>;
  getTraits(uuid: string): Promise<string[]>;
  /** Releases every allocation of a consumer (an instance); absent allocations are fine. */
  deleteAllocations(consumer: string): Promise<void>;
  /**
   * nova's move_allocations: what `source` holds becomes `target`'s (replacing what it had) and
   * `source` is left with none, in one request. False, changing nothing, when `source` holds none.
   */
  moveAllocations(source: string, target: string): Promise<boolean>;
  /**
   * nova's remove_provider_tree_from_instance_allocation: `consumer` keeps its allocations on every
   * provider but `provider` (an instance evacuated away from this node). False, changing nothing,
   * when it holds nothing there.
   */
  removeProviderAllocations(consumer: string, provider: string): Promise<boolean>;
}

interface ConsumerAllocations {
  allocations: Record<string, { resources: Record<string, number> }>;
  consumer_generation?: number | null;
  project_id?: string;
  user_id?: string;
  /** Since microversion 1.38: INSTANCE, MIGRATION, ... (required when writing). */
  consumer_type?: string;
}

/**
 * The consumer type to write back: Placement reads `unknown` for a consumer written without one
 * (nova's scheduler and conductor write allocations at microversions below 1.38) and refuses
 * `unknown` in a write, so such a consumer is written as what it is.
 */
function typeOf(held: ConsumerAllocations, otherwise: 'INSTANCE' | 'MIGRATION'): string {
  return held.consumer_type && held.consumer_type !== 'unknown' ? held.consumer_type : otherwise;
}

export function inventoriesOf(r: HostResources): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const rc of ['VCPU', 'MEMORY_MB', 'DISK_GB'] as const) {
    const inv = r[rc];
    out[rc] = {
      total: inv.total,
      reserved: Math.min(inv.reserved, inv.total),
      min_unit: 1,
      max_unit: inv.total,
      step_size: 1,
      allocation_ratio: inv.allocation_ratio,
    };
  }
  return out;
}

/**
 * Placement over HTTP with a Keystone token from the node's service session; a 401 renews the
 * token once, a 409 generation conflict re-reads the provider and retries (bounded).
 */
export class HttpPlacement implements PlacementClient {
  private lastInventory = '';

  constructor(
    private readonly session: KeystoneSession,
    private readonly iface: EndpointInterface = 'public',
  ) {}

  private async req<T>(method: string, path: string, body?: unknown, accept: number[] = []): Promise<{ status: number; body: T }> {
    const ep = parseEndpoint(await this.session.endpoint('placement', this.iface));
    const res = await withSessionToken(this.session, (token) =>
      requestJson<T>(
        ep,
        {
          method,
          path,
          ...(body === undefined ? {} : { body }),
          headers: { 'x-auth-token': token, 'openstack-api-version': PLACEMENT_VERSION },
          accept: [401, ...accept],
        },
        'placement',
      ),
    );
    if (res.status === 401) throw commonError('AUTH_FAILED', `placement refused the service token for ${method} ${path}`);
    return res;
  }

  private async generation(uuid: string): Promise<number> {
    const res = await this.req<{ generation: number }>('GET', `resource_providers/${uuid}`);
    return res.body.generation;
  }

  /** Runs a generation-guarded update, re-reading the generation after a conflict. */
  private async guarded(uuid: string, put: (generation: number) => Promise<number>): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const status = await put(await this.generation(uuid));
      if (status !== 409) return;
    }
    throw driverError('PLACEMENT_CONFLICT', `resource provider ${uuid} kept changing under concurrent updates`);
  }

  async ensureProvider(uuid: string, name: string): Promise<number> {
    const got = await this.req<{ generation: number }>('GET', `resource_providers/${uuid}`, undefined, [404]);
    if (got.status === 200) return got.body.generation;
    const made = await this.req<{ generation: number; errors?: unknown }>('POST', 'resource_providers', { uuid, name }, [409]);
    if (made.status === 409) {
      throw driverError(
        'PLACEMENT_CONFLICT',
        `placement already has a resource provider named ${name} with another uuid; remove it (openstack resource provider delete) or rename this node`,
      );
    }
    this.lastInventory = '';
    return made.body.generation;
  }

  async setInventory(uuid: string, resources: HostResources): Promise<void> {
    const inventories = inventoriesOf(resources);
    // Keyed by provider too: the same resources for another provider still need their PUT.
    const key = `${uuid} ${JSON.stringify(inventories)}`;
    if (key === this.lastInventory) return;
    await this.guarded(
      uuid,
      async (generation) =>
        (await this.req('PUT', `resource_providers/${uuid}/inventories`, { resource_provider_generation: generation, inventories }, [409])).status,
    );
    this.lastInventory = key;
  }

  async getTraits(uuid: string): Promise<string[]> {
    return (await this.req<{ traits: string[] }>('GET', `resource_providers/${uuid}/traits`)).body.traits;
  }

  async setTraits(uuid: string, traits: string[]): Promise<void> {
    for (const t of traits.filter((x) => x.startsWith('CUSTOM_'))) await this.req('PUT', `traits/${t}`, undefined, []);
    await this.guarded(
      uuid,
      async (generation) =>
        (await this.req('PUT', `resource_providers/${uuid}/traits`, { resource_provider_generation: generation, traits: [...new Set(traits)].sort() }, [409]))
          .status,
    );
  }

  async deleteAllocations(consumer: string): Promise<void> {
    await this.req('DELETE', `allocations/${consumer}`, undefined, [404]);
  }

  async moveAllocations(source: string, target: string): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const src = (await this.req<ConsumerAllocations>('GET', `allocations/${source}`)).body;
      if (!Object.keys(src.allocations ?? {}).length) return false;
      const tgt = (await this.req<ConsumerAllocations>('GET', `allocations/${target}`)).body;
      const owner = { project_id: src.project_id, user_id: src.user_id };
      const body = {
        [source]: { allocations: {}, consumer_generation: src.consumer_generation ?? null, consumer_type: typeOf(src, 'MIGRATION'), ...owner },
        [target]: {
          allocations: src.allocations,
          consumer_generation: tgt.consumer_generation ?? null,
          consumer_type: typeOf(tgt, 'INSTANCE'),
          ...owner,
        },
      };
      // A consumer generation conflict: another writer moved one of them; read both again.
      if ((await this.req('POST', 'allocations', body, [409])).status !== 409) return true;
    }
    throw driverError('PLACEMENT_CONFLICT', `the allocations of ${source} kept changing while moving them to ${target}`);
  }

  async removeProviderAllocations(consumer: string, provider: string): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const held = (await this.req<ConsumerAllocations>('GET', `allocations/${consumer}`)).body;
      if (!held.allocations?.[provider]) return false;
      const { [provider]: _dropped, ...rest } = held.allocations;
      if (!Object.keys(rest).length) {
        await this.deleteAllocations(consumer);
        return true;
      }
      const body = {
        allocations: rest,
        consumer_generation: held.consumer_generation ?? null,
        consumer_type: typeOf(held, 'INSTANCE'),
        project_id: held.project_id,
        user_id: held.user_id,
      };
      // A consumer generation conflict: the allocations changed meanwhile; read them again.
      if ((await this.req('PUT', `allocations/${consumer}`, body, [409])).status !== 409) return true;
    }
    throw driverError('PLACEMENT_CONFLICT', `the allocations of ${consumer} kept changing while removing provider ${provider} from them`);
  }
}
