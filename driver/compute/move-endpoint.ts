import type { MethodSpec } from '../rpc/dispatcher.js';
import { novaError } from '../rpc/failure.js';
import type { InstanceArg } from '../objects/instance.js';
import type { ComputeManager } from './manager.js';
import { decodeMigration, type MigrationArg } from './resize.js';

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
 * (driver/compute/resize.ts), resize and cold migration to another Berth node
 * (driver/compute/migrate.ts), and live migration refused.
 */
export function moveMethods(manager: ComputeManager): Record<string, MethodSpec> {
  const r = manager.resizes;
  const x = manager.migrations;
  const here = manager.host;
  /** A move between two nodes (driver/compute/migrate.ts), by the ends its Migration names; else on this host (resize.ts). */
  const crossNode = async (m: MigrationArg): Promise<boolean> => {
    const local = await manager.migration(m.uuid);
    const [source, dest] = local ? [local.source_compute, local.dest_compute] : [m.source_compute, m.dest_compute];
    return source !== null && dest !== null && source !== dest;
  };
  const methods: Record<string, MethodSpec> = {
    prep_resize: {
      required: ['instance', 'image', 'flavor', 'request_spec', 'filter_properties', 'node', 'clean_shutdown', 'migration', 'host_list'],
      long: true,
      handler: async (ctx, args) => {
        const arg = instanceOf(args);
        const i = arg.decode();
        const flavor = (arg.primitive as { 'nova_object.data': { flavor: unknown } })['nova_object.data'].flavor;
        const migration = decodeMigration(args.migration);
        if (i.host === null || i.host === here) return r.prep(ctx, { uuid: i.uuid, host: i.host, flavor }, args.flavor, migration);
        const instance = {
          uuid: i.uuid,
          host: i.host,
          node: i.node,
          image_ref: i.image_ref,
          vm_state: i.vm_state ?? 'active',
          flavor,
          primitive: arg.primitive,
        };
        await x.prepDestination(
          ctx,
          { instance, flavor: args.flavor, image: args.image, request_spec: args.request_spec, clean_shutdown: args.clean_shutdown !== false },
          migration,
        );
      },
    },
    resize_instance: {
      required: ['instance', 'migration', 'image', 'flavor', 'clean_shutdown', 'request_spec'],
      long: true,
      handler: async (ctx, args) => {
        const arg = instanceOf(args);
        const migration = decodeMigration(args.migration);
        if (!(await crossNode(migration))) return r.resizeInstance(ctx, arg.uuid, migration);
        const req = {
          uuid: arg.uuid,
          primitive: arg.primitive,
          flavor: args.flavor,
          image: args.image,
          request_spec: args.request_spec,
          clean_shutdown: args.clean_shutdown !== false,
        };
        await x.resizeSource(ctx, req, migration);
      },
    },
    finish_resize: {
      required: ['instance', 'migration', 'image', 'disk_info', 'request_spec'],
      long: true,
      handler: async (ctx, args) => {
        const migration = decodeMigration(args.migration);
        if (!(await crossNode(migration))) return r.finish(ctx, instanceOf(args).uuid, migration);
        await x.finishDestination(ctx, instanceOf(args).uuid, migration, args.disk_info);
      },
    },
    confirm_resize: {
      required: ['instance', 'migration'],
      long: true,
      handler: async (ctx, args) => {
        const migration = decodeMigration(args.migration);
        if (!(await crossNode(migration))) return r.confirm(ctx, instanceOf(args).uuid, migration);
        await x.confirmSource(ctx, instanceOf(args).uuid, migration);
      },
    },
    revert_resize: {
      required: ['instance', 'migration', 'request_spec'],
      long: true,
      handler: async (ctx, args) => {
        const migration = decodeMigration(args.migration);
        if (!(await crossNode(migration))) return r.revert(ctx, instanceOf(args).uuid, migration);
        const arg = instanceOf(args);
        await x.revertDestination(ctx, { uuid: arg.uuid, primitive: arg.primitive }, migration, args.request_spec);
      },
    },
    // On one host revert_resize did both halves; a repeat of the second finds it reverted.
    finish_revert_resize: {
      required: ['instance', 'migration', 'request_spec'],
      long: true,
      handler: async (ctx, args) => {
        const migration = decodeMigration(args.migration);
        if (!(await crossNode(migration))) return r.revert(ctx, instanceOf(args).uuid, migration);
        await x.finishRevertSource(ctx, instanceOf(args).uuid, migration);
      },
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
