import { randomUUID } from 'node:crypto';
import type { Logger } from '../../common/log.js';
import type { RequestContext } from '../rpc/envelope.js';
import { encodeEnvelope, flattenContext, newUniqueId } from '../rpc/envelope.js';
import { pyJson } from '../rpc/pyjson.js';
import { declareControlExchange, topicQueueFlags, type RabbitDeclareOptions } from '../rpc/topology.js';
import type { Transport } from '../rpc/transport.js';

/** What the notifier needs of the transport (a fake stands in for it in unit tests). */
export type Publisher = Pick<Transport, 'onConnect' | 'publish'>;
import { instancePayload, legacyPayload, type PayloadInput } from './payload.js';

export interface NotifierOptions {
  exchange: string;
  host: string;
  format: 'versioned' | 'unversioned' | 'both';
  driver: 'messagingv2' | 'messaging' | 'noop';
  versionedTopic: string;
  legacyTopic: string;
  rabbit: RabbitDeclareOptions;
  log: Logger;
  /** Awaited before each instance notification: the state it announces is made durable first. */
  beforePublish?: () => Promise<void>;
}

/** `YYYY-MM-DD HH:MM:SS.ffffff` in UTC, as oslo stamps notifications. */
function notificationTimestamp(d = new Date()): string {
  return `${d.toISOString().replace('T', ' ').slice(0, 23)}000`;
}

/** The context as notifications carry it: a redacted copy (contract §9.1). */
function sanitized(ctx: RequestContext): RequestContext {
  return { ...ctx, auth_token: null, service_catalog: [], remote_address: null, timestamp: new Date().toISOString().replace('Z', '').padEnd(26, '0') };
}

/** Emits nova's instance notifications on `<topic>.<priority>`; never fails the operation. */
export class Notifier {
  constructor(
    private readonly transport: Publisher,
    private readonly opts: NotifierOptions,
  ) {
    transport.onConnect(async (ch) => {
      if (opts.driver === 'noop') return;
      await declareControlExchange(ch, opts.exchange, opts.rabbit);
      for (const key of this.routingKeys()) {
        await ch.assertQueue(key, topicQueueFlags(opts.rabbit));
        await ch.bindQueue(key, opts.exchange, key);
      }
    });
  }

  private routingKeys(): string[] {
    const keys: string[] = [];
    for (const prio of ['info', 'error']) {
      if (this.opts.format !== 'unversioned') keys.push(`${this.opts.versionedTopic}.${prio}`);
      if (this.opts.format !== 'versioned') keys.push(`${this.opts.legacyTopic}.${prio}`);
    }
    return keys;
  }

  /** instance.<event>.<phase>; phase `error` is sent with priority ERROR. */
  async instance(ctx: RequestContext, event: string, phase: 'start' | 'end' | 'error' | null, input: PayloadInput): Promise<void> {
    if (this.opts.driver === 'noop') return;
    await this.opts.beforePublish?.().catch((err: unknown) => {
      this.opts.log.warn({ err: (err as Error).message }, 'could not make the announced state durable before the notification');
    });
    const priority = phase === 'error' ? 'ERROR' : 'INFO';
    const suffix = phase ? `.${phase}` : '';
    const sends: Promise<void>[] = [];
    if (this.opts.format !== 'unversioned') {
      sends.push(
        this.send(ctx, `${this.opts.versionedTopic}.${priority.toLowerCase()}`, {
          publisher_id: `nova-compute:${this.opts.host}`,
          event_type: `instance.${event}${suffix}`,
          priority,
          payload: instancePayload(event, input),
        }),
      );
    }
    if (this.opts.format !== 'versioned') {
      const legacyEvent = event === 'create' && phase === 'error' ? 'create.error' : `${event}${suffix}`;
      sends.push(
        this.send(ctx, `${this.opts.legacyTopic}.${priority.toLowerCase()}`, {
          publisher_id: `compute.${this.opts.host}`,
          event_type: `compute.instance.${legacyEvent}`,
          priority,
          payload: legacyPayload(input),
        }),
      );
    }
    await Promise.all(sends);
  }

  /**
   * The node's capacity and usage, for schedulers: event `compute.capacity.update` on the
   * versioned topic (a Berth event; nova reports the same figures through Placement).
   */
  async capacity(source: { hostCapacity(): Promise<Record<string, unknown>> }): Promise<void> {
    if (this.opts.driver === 'noop' || this.opts.format === 'unversioned') return;
    const data = await source.hostCapacity();
    await this.send({}, `${this.opts.versionedTopic}.info`, {
      publisher_id: `nova-compute:${this.opts.host}`,
      event_type: 'compute.capacity.update',
      priority: 'INFO',
      payload: { 'nova_object.name': 'BerthHostCapacityPayload', 'nova_object.namespace': 'berth', 'nova_object.version': '1.0', 'nova_object.data': data },
    });
  }

  private async send(ctx: RequestContext, routingKey: string, body: Record<string, unknown>): Promise<void> {
    const message = {
      message_id: randomUUID(),
      ...body,
      timestamp: notificationTimestamp(),
      _unique_id: newUniqueId(),
      ...flattenContext(sanitized(ctx)),
    };
    const bytes = this.opts.driver === 'messaging' ? Buffer.from(pyJson(message)) : encodeEnvelope(message);
    try {
      await this.transport.publish(this.opts.exchange, routingKey, bytes, {}, 10_000);
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message, event_type: body.event_type }, 'notification not sent');
    }
  }
}
