import { describeError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { DockerApi } from './docker-api.js';
import { followEvents, type DockerEvent, type EventFollower } from './docker-events.js';
import { LABEL_INSTANCE } from './types.js';

/** One consumer of the engine's events about Berth's containers. */
export interface EventSubscriber {
  /** The container actions it wants (`start`, `create`, `destroy`, ...). */
  actions: string[];
  /** After each (re)connection of the one stream, before its first event: catches up with what nobody saw. */
  onConnect?: () => Promise<void>;
  onEvent: (ev: DockerEvent) => void;
}

export interface Subscription {
  stop(): void;
}

/**
 * The agent's one connection to the engine's event stream (followEvents: one reconnect loop with
 * back-off), for every container labelled as a Berth instance, fanned out to its subscribers by
 * action: the network plugs (re-plug after a start, the address book) and the volumes (mount
 * hot-attached volumes after a start) share it. Subscribers join before `start`; the stream
 * follows the union of their actions. A subscriber's failing catch-up fails the connection, which
 * is made again, so each catch-up runs once per connection.
 */
export class DockerEventHub {
  private readonly subscribers = new Set<EventSubscriber>();
  private follower: EventFollower | undefined;

  constructor(
    private readonly api: DockerApi,
    private readonly log: Logger,
  ) {}

  subscribe(sub: EventSubscriber): Subscription {
    if (this.follower) throw new Error('engine event subscribers join before the stream starts');
    this.subscribers.add(sub);
    return { stop: () => this.subscribers.delete(sub) };
  }

  /** Connects (once; again whenever the stream breaks off) when there is a subscriber. */
  start(): void {
    if (this.follower || this.subscribers.size === 0) return;
    const actions = [...new Set([...this.subscribers].flatMap((s) => s.actions))].sort();
    this.follower = followEvents(this.api, {
      filters: { type: ['container'], event: actions, label: [LABEL_INSTANCE] },
      what: 'follow container events',
      log: this.log,
      onConnect: async () => {
        await Promise.all([...this.subscribers].map((s) => s.onConnect?.()));
      },
      onEvent: (ev) => {
        for (const s of this.subscribers) {
          if (!ev.Action || !s.actions.includes(ev.Action)) continue;
          try {
            s.onEvent(ev);
          } catch (err) {
            this.log.warn({ err: describeError(err), action: ev.Action }, 'an engine event subscriber failed');
          }
        }
      },
    });
  }

  stop(): void {
    this.follower?.stop();
    this.subscribers.clear();
  }
}
