import type { AgentClient } from '../../agent/client/types.js';
import { describeError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { invalidField } from '../objects/primitive.js';
import type { MethodSpec } from '../rpc/dispatcher.js';
import type { Maintenance } from './maintenance.js';

export type CacheResult = 'cached' | 'existing' | 'error' | 'unsupported';

/**
 * nova's cache_images (5.4+): each image made present on this host as a build would fetch it,
 * reported as nova's driver cache_image contract says: 'cached' when it was fetched now,
 * 'existing' when it was on the host already, 'error' when it could not be (an unknown image, one
 * that cannot boot instances, an unreachable image service), one image's failure never stopping
 * the others.
 */
export async function cacheImages(agent: Pick<AgentClient, 'hostImage' | 'fetchImage'>, imageIds: string[], log: Logger): Promise<Record<string, CacheResult>> {
  const results: Record<string, CacheResult> = {};
  log.info({ images: imageIds.length }, 'caching images by request');
  for (const id of imageIds) {
    try {
      if ((await agent.hostImage(id)).present) {
        results[id] = 'existing';
        continue;
      }
      results[id] = (await agent.fetchImage(id)).present ? 'cached' : 'error';
    } catch (err) {
      log.error({ image_id: id, err: describeError(err) }, 'failed to cache an image');
      results[id] = 'error';
    }
  }
  return results;
}

/** cache_images and host_maintenance_mode, the host-wide methods beside set_host_enabled. */
export function hostMethods(agent: AgentClient, maintenance: Maintenance, log: Logger): Record<string, MethodSpec> {
  return {
    cache_images: {
      required: ['image_ids'],
      long: true,
      handler: async (_ctx, args) => {
        const ids = args.image_ids;
        if (!Array.isArray(ids) || !ids.every((i): i is string => typeof i === 'string' && i !== ''))
          throw invalidField('image_ids', 'expected a list of image ids');
        return cacheImages(agent, ids, log);
      },
    },
    host_maintenance_mode: {
      required: ['host', 'mode'],
      handler: async (_ctx, args) => {
        if (typeof args.mode !== 'boolean') throw invalidField('mode', 'expected true or false');
        return maintenance.set(args.mode);
      },
    },
  };
}
