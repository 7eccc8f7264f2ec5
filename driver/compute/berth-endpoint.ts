import type { Endpoint } from '../rpc/dispatcher.js';
import { typeError } from '../rpc/failure.js';
import type { InstanceRow } from '../db/models.js';
import { powerStateName } from './states.js';
import type { ComputeManager } from './manager.js';
import type { InstanceStore } from './store.js';
import type { NovaExtras } from '../notify/payload.js';

/**
 * Berth's own RPC namespace (`berth`, 1.2) on the compute topic, so the berth CLI can inspect any
 * node through the broker the way it drives it, and two Berth nodes keep their records of an
 * instance moving between them in step (driver/compute/migrate.ts). Nova never sends it.
 *
 * Version history: 1.0: list_instances, show_instance, get_host_capacity, sync_power_states.
 * 1.1: resize_finished and confirm_resize_at_destination (casts between the ends of a move);
 * show_instance's migration gives its source and destination and the bytes it transferred.
 * 1.2: list_instances gains all_hosts (the instances of every node on a shared database).
 */
export interface InstanceView {
  uuid: string;
  name: string;
  host: string;
  project_id: string;
  image: string;
  flavor: unknown;
  vm_state: string;
  task_state: string | null;
  power_state: string;
  ip_address: string | null;
  created_at: string;
  launched_at: string | null;
  terminated_at: string | null;
}

export function instanceView(r: InstanceRow): InstanceView {
  return {
    uuid: r.uuid,
    name: r.display_name,
    host: r.host,
    project_id: r.project_id,
    image: r.image_ref,
    flavor: JSON.parse(r.flavor),
    vm_state: r.vm_state,
    task_state: r.task_state,
    power_state: powerStateName(r.power_state),
    ip_address: r.ip_address,
    created_at: r.created_at.toISOString(),
    launched_at: r.launched_at?.toISOString() ?? null,
    terminated_at: r.terminated_at?.toISOString() ?? null,
  };
}

function uuidArg(v: unknown): string {
  if (typeof v !== 'string' || !/^[0-9a-f-]{36}$/.test(v)) throw typeError('argument must be a uuid string');
  return v;
}

export function berthEndpoint(host: string, store: InstanceStore, manager: ComputeManager): Endpoint {
  return {
    name: 'BerthAPI',
    namespace: 'berth',
    version: '1.2',
    methods: {
      list_instances: {
        required: [],
        optional: ['all', 'all_hosts'],
        handler: async (_ctx, args) => (await store.listAll(args.all_hosts === true ? null : host, args.all === true)).map(instanceView),
      },
      get_host_capacity: { required: [], handler: async () => ({ ...(await manager.hostCapacity()), maintenance: manager.maintenance.active }) },
      sync_power_states: { required: [], handler: () => manager.syncPowerStates() },
      resize_finished: {
        required: ['instance_uuid', 'migration_uuid'],
        handler: async (_ctx, args) => manager.migrations.finishedAtDestination(uuidArg(args.instance_uuid), uuidArg(args.migration_uuid)),
      },
      confirm_resize_at_destination: {
        required: ['instance_uuid', 'migration_uuid'],
        long: true,
        handler: async (ctx, args) => manager.migrations.confirmAtDestination(ctx, uuidArg(args.instance_uuid), uuidArg(args.migration_uuid)),
      },
      show_instance: {
        required: ['uuid'],
        handler: async (_ctx, args) => {
          if (typeof args.uuid !== 'string') throw typeError('show_instance() argument uuid must be a string');
          const row = await manager.require(args.uuid.toLowerCase());
          const fault = await store.latestFault(row.uuid);
          const actions = await store.actions(row.uuid);
          const move = await store.latestMigration(row.uuid);
          return {
            ...instanceView(row),
            system_metadata: (JSON.parse(row.nova) as NovaExtras).system_metadata ?? {},
            migration: move
              ? {
                  uuid: move.uuid,
                  status: move.status,
                  type: move.migration_type,
                  source_compute: move.source_compute,
                  dest_compute: move.dest_compute,
                  transferred_bytes: move.transferred_bytes,
                  created_at: move.created_at.toISOString(),
                }
              : null,
            fault: fault ? { code: fault.code, message: fault.message, exception: fault.details, created_at: fault.created_at.toISOString() } : null,
            actions: actions.map((a) => ({
              action: a.action,
              request_id: a.request_id,
              result: a.result,
              message: a.message,
              start_time: a.start_time.toISOString(),
              finish_time: a.finish_time?.toISOString() ?? null,
            })),
          };
        },
      },
    },
  };
}
