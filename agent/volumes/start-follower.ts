import { describeError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { DockerEventHub, Subscription } from '../runtime/docker-event-hub.js';
import { LABEL_INSTANCE } from '../runtime/types.js';

/**
 * Follows the engine's starts of Berth's containers and hands each to `onStart`: containers the
 * engine restarts on its own (its restart policy, dockerd's restart) get their hot-attached
 * volumes mounted again. A subscriber of the agent's one event stream (DockerEventHub).
 */
export function followStarts(events: Pick<DockerEventHub, 'subscribe'>, onStart: (uuid: string) => Promise<void>, log: Logger): Subscription {
  return events.subscribe({
    actions: ['start'],
    onEvent: (ev) => {
      const uuid = ev.Actor?.Attributes?.[LABEL_INSTANCE];
      if (uuid) onStart(uuid).catch((err: unknown) => log.warn({ uuid, err: describeError(err) }, 'could not mount volumes into a started instance'));
    },
  });
}
