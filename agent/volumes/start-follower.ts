import { describeError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { DockerApi } from '../runtime/docker-api.js';
import { followEvents, type EventFollower } from '../runtime/docker-events.js';
import { LABEL_INSTANCE } from '../runtime/types.js';

/**
 * Follows the engine's starts of Berth's containers and hands each to `onStart`: containers the
 * engine restarts on its own (its restart policy, dockerd's restart) get their hot-attached
 * volumes mounted again.
 */
export function followStarts(api: DockerApi, onStart: (uuid: string) => Promise<void>, log: Logger): EventFollower {
  return followEvents(api, {
    filters: { type: ['container'], event: ['start'], label: [LABEL_INSTANCE] },
    what: 'follow container starts',
    log,
    onEvent: (ev) => {
      const uuid = ev.Actor?.Attributes?.[LABEL_INSTANCE];
      if (uuid) onStart(uuid).catch((err: unknown) => log.warn({ uuid, err: describeError(err) }, 'could not mount volumes into a started instance'));
    },
  });
}
