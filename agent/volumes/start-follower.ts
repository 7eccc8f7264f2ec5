import { createInterface } from 'node:readline';
import { describeError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { DockerApi } from '../runtime/docker-api.js';
import { LABEL_INSTANCE } from '../runtime/types.js';

export interface StartFollower {
  stop(): void;
}

/**
 * Follows the engine's starts of Berth's containers and hands each to `onStart`: containers the
 * engine restarts on its own (its restart policy, dockerd's restart) get their hot-attached
 * volumes mounted again. The stream is followed again, with back-off, whenever it breaks off.
 */
export function followStarts(api: DockerApi, onStart: (uuid: string) => Promise<void>, log: Logger): StartFollower {
  let stopped = false;
  let current: { destroy(): void } | undefined;
  const followOnce = async (): Promise<void> => {
    const res = await api.raw({
      path: '/events',
      query: { filters: JSON.stringify({ type: ['container'], event: ['start'], label: [LABEL_INSTANCE] }) },
      timeoutMs: 0,
      what: 'follow container starts',
    });
    if (res.status >= 300) {
      res.body.resume();
      throw new Error(`dockerd answered ${res.status} to the event stream`);
    }
    current = res.body;
    for await (const line of createInterface({ input: res.body, crlfDelay: Infinity })) {
      let uuid: string | undefined;
      try {
        uuid = (JSON.parse(line) as { Actor?: { Attributes?: Record<string, string> } }).Actor?.Attributes?.[LABEL_INSTANCE];
      } catch {
        continue;
      }
      if (uuid) onStart(uuid).catch((err: unknown) => log.warn({ uuid, err: describeError(err) }, 'could not mount volumes into a started instance'));
    }
  };
  void (async () => {
    let delay = 250;
    while (!stopped) {
      const began = Date.now();
      try {
        await followOnce();
      } catch (err) {
        if (!stopped) log.debug({ err: describeError(err) }, 'container start stream broke off; following again');
      }
      if (Date.now() - began > 30_000) delay = 250;
      if (!stopped) await new Promise((r) => setTimeout(r, delay).unref());
      delay = Math.min(delay * 2, 5000);
    }
  })();
  return {
    stop: () => {
      stopped = true;
      current?.destroy();
    },
  };
}
