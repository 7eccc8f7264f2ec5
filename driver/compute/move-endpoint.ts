import type { MethodSpec } from '../rpc/dispatcher.js';
import { novaError } from '../rpc/failure.js';
import type { InstanceArg } from '../objects/instance.js';
import type { ComputeManager } from './manager.js';
import { decodeMigration } from './resize.js';

const instanceOf = (args: Record<string, unknown>): InstanceArg => args.instance as InstanceArg;

/**
 * Why a Berth node refuses live migration: moving a running container between hosts means
 * checkpointing its processes (CRIU), which works only for trivial containers (no open TCP
 * connections kept, no device or inotify state, the same kernel and image layers on both ends) and
 * is experimental in Docker. Nova's conductor turns this exception into a refused request (400).
 */
export const LIVE_MIGRATION_REFUSAL =
  'Live migration is not supported by the Berth (docker) driver: a running container can only be moved with CRIU checkpoints, which work for trivial containers only. Use a cold migration or resize.';

/** The live-migration methods, each answered with nova's MigrationPreCheckError (docs/rpc-reference.md). */
export const LIVE_MIGRATION_METHODS = [
  'check_can_live_migrate_destination',
  'check_can_live_migrate_source',
  'live_migration',
  'pre_live_migration',
  'post_live_migration_at_destination',
  'rollback_live_migration_at_destination',
  'live_migration_abort',
  'live_migration_force_complete',
] as const;

/**
 * The compute RPC methods of moves (nova's rpcapi.py 6.x): resize on the instance's own host
 * (driver/compute/resize.ts), and live migration refused.
 */
export function moveMethods(manager: ComputeManager): Record<string, MethodSpec> {
  const r = manager.resizes;
  const methods: Record<string, MethodSpec> = {
    prep_resize: {
      required: ['instance', 'image', 'flavor', 'request_spec', 'filter_properties', 'node', 'clean_shutdown', 'migration', 'host_list'],
      long: true,
      handler: async (ctx, args) => {
        const arg = instanceOf(args);
        const i = arg.decode();
        const flavor = (arg.primitive as { 'nova_object.data': { flavor: unknown } })['nova_object.data'].flavor;
        await r.prep(ctx, { uuid: i.uuid, host: i.host, flavor }, args.flavor, decodeMigration(args.migration));
      },
    },
    resize_instance: {
      required: ['instance', 'migration', 'image', 'flavor', 'clean_shutdown', 'request_spec'],
      long: true,
      handler: (ctx, args) => r.resizeInstance(ctx, instanceOf(args).uuid, decodeMigration(args.migration)),
    },
    finish_resize: {
      required: ['instance', 'migration', 'image', 'disk_info', 'request_spec'],
      long: true,
      handler: (ctx, args) => r.finish(ctx, instanceOf(args).uuid, decodeMigration(args.migration)),
    },
    confirm_resize: {
      required: ['instance', 'migration'],
      long: true,
      handler: (ctx, args) => r.confirm(ctx, instanceOf(args).uuid, decodeMigration(args.migration)),
    },
    revert_resize: {
      required: ['instance', 'migration', 'request_spec'],
      long: true,
      handler: (ctx, args) => r.revert(ctx, instanceOf(args).uuid, decodeMigration(args.migration)),
    },
    // revert_resize did both halves on this one host; a repeat of the second finds it reverted.
    finish_revert_resize: {
      required: ['instance', 'migration', 'request_spec'],
      long: true,
      handler: (ctx, args) => r.revert(ctx, instanceOf(args).uuid, decodeMigration(args.migration)),
    },
  };
  for (const name of LIVE_MIGRATION_METHODS) {
    methods[name] = {
      required: [],
      optional: [
        'instance',
        'destination',
        'dest',
        'block_migration',
        'disk_over_commit',
        'migration',
        'migrate_data',
        'migration_id',
        'host',
        'disk',
        'dest_check_data',
        'request_spec',
        'source_bdms',
        'is_shared_instance_path',
        'destroy_disks',
      ],
      handler: async () => {
        throw novaError('MigrationPreCheckError', 400, `Migration pre-check error: ${LIVE_MIGRATION_REFUSAL}`, { reason: LIVE_MIGRATION_REFUSAL });
      },
    };
  }
  return methods;
}
