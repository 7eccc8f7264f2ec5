import type { MethodSpec } from '../rpc/dispatcher.js';
import type { InstanceArg } from '../objects/instance.js';
import { invalidField } from '../objects/primitive.js';
import type { ComputeManager } from './manager.js';

const instanceOf = (args: Record<string, unknown>): InstanceArg => args.instance as InstanceArg;

/** unshelve_instance's `image`: the Glance image dict of the shelved snapshot (null: use the one on record). */
function shelvedImage(image: unknown): { id: string } | null {
  if (image === null || image === undefined) return null;
  const id = typeof image === 'object' && !Array.isArray(image) ? (image as Record<string, unknown>).id : undefined;
  if (typeof id !== 'string' || id === '') throw invalidField('image.id', 'expected the Glance image dict of the shelved snapshot');
  return { id };
}

/**
 * The compute RPC methods of shelving (nova's rpcapi.py 6.x; driver/compute/shelve.ts), and
 * start_instance, which nova's conductor also sends to unshelve an instance not offloaded.
 */
export function shelveMethods(manager: ComputeManager): Record<string, MethodSpec> {
  const s = manager.shelves;
  return {
    shelve_instance: {
      required: ['instance', 'image_id'],
      optional: ['clean_shutdown', 'accel_uuids'],
      long: true,
      handler: async (ctx, args) => {
        if (typeof args.image_id !== 'string' || args.image_id === '')
          throw invalidField('image_id', 'expected the id of the image nova-api created for the shelve');
        await s.shelve(ctx, instanceOf(args).uuid, args.image_id);
      },
    },
    shelve_offload_instance: {
      required: ['instance'],
      optional: ['clean_shutdown', 'accel_uuids'],
      long: true,
      handler: (ctx, args) => s.offload(ctx, instanceOf(args).uuid),
    },
    unshelve_instance: {
      required: ['instance'],
      optional: ['host', 'image', 'filter_properties', 'node', 'request_spec', 'accel_uuids'],
      long: true,
      handler: (ctx, args) => s.unshelve(ctx, instanceOf(args), shelvedImage(args.image)),
    },
    start_instance: {
      required: ['instance'],
      optional: ['clean_shutdown', 'reboot_type', 'block_device_info'],
      long: true,
      handler: (ctx, args) => s.start(ctx, instanceOf(args).uuid),
    },
  };
}
