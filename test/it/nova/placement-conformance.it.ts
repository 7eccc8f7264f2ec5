import { randomBytes, randomUUID } from 'node:crypto';
import { keystoneSession } from '../../../common/keystone/index.js';
import { HttpPlacement } from '../../../driver/nova/placement.js';
import { placementConformance } from '../../conformance/placement.js';
import { loadTestCloud, openstack, serviceCredentials } from '../../support/cloud.js';

const PLACEMENT = ['--os-placement-api-version', '1.39'];

interface InventoryRow {
  resource_class: string;
  total: number;
  reserved: number;
  min_unit: number;
  max_unit: number;
  step_size: number;
  allocation_ratio: number;
}

/**
 * The real Placement of the test cloud (tools/dev/cloud.sh) through HttpPlacement with the cloud's
 * placement service user; read back with the stock client as the cloud's admin.
 */
placementConformance('placement', async () => {
  const cloud = loadTestCloud();
  const session = keystoneSession(serviceCredentials(cloud, cloud.placement));
  const uuid = randomUUID();
  const suffix = randomBytes(4).toString('hex');
  const customTrait = `CUSTOM_BERTH_CONF_${suffix.toUpperCase()}`;
  const consumers: string[] = [];
  return {
    placement: new HttpPlacement(session, 'public'),
    uuid,
    name: `berth-conf-${suffix}`,
    customTrait,
    inspect: {
      async generation(id) {
        try {
          return (await openstack<{ generation: number }>([...PLACEMENT, 'resource', 'provider', 'show', id], { json: true })).generation;
        } catch (err) {
          if (/No resource provider|404/.test((err as Error).message)) return null;
          throw err;
        }
      },
      async inventories(id) {
        const rows = await openstack<InventoryRow[]>([...PLACEMENT, 'resource', 'provider', 'inventory', 'list', id], { json: true });
        return Object.fromEntries(
          rows.map(({ resource_class: rc, total, reserved, min_unit, max_unit, step_size, allocation_ratio }) => [
            rc,
            { total, reserved, min_unit, max_unit, step_size, allocation_ratio },
          ]),
        );
      },
      async traits(id) {
        return (await openstack<Array<{ name: string }>>([...PLACEMENT, 'resource', 'provider', 'trait', 'list', id], { json: true })).map((t) => t.name);
      },
      async allocate(consumer, rp, resources, opts = {}) {
        consumers.push(consumer);
        const amounts = Object.entries(resources).map(([rc, n]) => `${rc}=${n}`);
        const owner = ['--project-id', randomUUID(), '--user-id', randomUUID(), ...(opts.untyped ? [] : ['--consumer-type', 'MIGRATION'])];
        // Untyped: at the microversion nova's Zed report client writes allocations with (1.28).
        const version = opts.untyped ? ['--os-placement-api-version', '1.28'] : PLACEMENT;
        await openstack([...version, 'resource', 'provider', 'allocation', 'set', '--allocation', [`rp=${rp}`, ...amounts].join(','), ...owner, consumer]);
      },
      async allocations(consumer) {
        const rows = await openstack<Array<{ resources: Record<string, number> }>>([...PLACEMENT, 'resource', 'provider', 'allocation', 'show', consumer], {
          json: true,
        });
        const out: Record<string, number> = {};
        for (const r of rows) for (const [rc, n] of Object.entries(r.resources)) out[rc] = (out[rc] ?? 0) + n;
        return out;
      },
    },
    async cleanup() {
      for (const c of consumers) await openstack([...PLACEMENT, 'resource', 'provider', 'allocation', 'delete', c]).catch(() => undefined);
      await openstack([...PLACEMENT, 'resource', 'provider', 'delete', uuid]).catch((err: Error) => {
        if (!/No resource provider|404/.test(err.message)) throw err;
      });
      await openstack([...PLACEMENT, 'trait', 'delete', customTrait]).catch((err: Error) => {
        if (!/No such trait|404/.test(err.message)) throw err;
      });
    },
  };
});
