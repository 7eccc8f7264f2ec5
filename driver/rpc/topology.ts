import { newUniqueId } from './envelope.js';
import type { TopologyChannel } from './transport.js';

/** The operator's [oslo_messaging_rabbit] options that change how objects are declared. */
export interface RabbitDeclareOptions {
  amqp_durable_queues: boolean;
  amqp_auto_delete: boolean;
  rabbit_ha_queues: boolean;
  rabbit_quorum_queue: boolean;
  rabbit_transient_queues_ttl: number;
}

/** Queue arguments and flags exactly as oslo.messaging declares them (contract §2). */
export function topicQueueFlags(o: RabbitDeclareOptions): { durable: boolean; autoDelete: boolean; arguments?: Record<string, unknown> } {
  const args: Record<string, unknown> = {};
  if (o.rabbit_ha_queues) args['x-ha-policy'] = 'all';
  if (o.rabbit_quorum_queue) return { durable: true, autoDelete: false, arguments: { ...args, 'x-queue-type': 'quorum' } };
  return { durable: o.amqp_durable_queues, autoDelete: o.amqp_auto_delete, ...(Object.keys(args).length ? { arguments: args } : {}) };
}

export function transientQueueArgs(o: RabbitDeclareOptions): Record<string, unknown> | undefined {
  const args: Record<string, unknown> = {};
  if (o.rabbit_transient_queues_ttl > 0) args['x-expires'] = o.rabbit_transient_queues_ttl * 1000;
  if (o.rabbit_ha_queues) args['x-ha-policy'] = 'all';
  return Object.keys(args).length ? args : undefined;
}

export async function declareControlExchange(ch: TopologyChannel, exchange: string, o: RabbitDeclareOptions): Promise<void> {
  await ch.assertExchange(exchange, 'topic', { durable: o.amqp_durable_queues, autoDelete: o.amqp_auto_delete });
}

/**
 * Declares what an RPC server for (topic, server) consumes: `<topic>`, `<topic>.<server>` and a
 * fresh `<topic>_fanout_<hex32>` bound to the `<topic>_fanout` exchange. Returns the queue names.
 */
export async function declareRpcServerQueues(
  ch: TopologyChannel,
  exchange: string,
  topic: string,
  server: string,
  o: RabbitDeclareOptions,
  fanoutQueue: string,
): Promise<string[]> {
  await declareControlExchange(ch, exchange, o);
  const flags = topicQueueFlags(o);
  const queues = [topic, `${topic}.${server}`];
  for (const q of queues) {
    await ch.assertQueue(q, flags);
    await ch.bindQueue(q, exchange, q);
  }
  await ch.assertExchange(`${topic}_fanout`, 'fanout', { durable: false, autoDelete: true });
  const fanoutArgs = transientQueueArgs(o);
  await ch.assertQueue(fanoutQueue, { durable: false, autoDelete: false, ...(fanoutArgs ? { arguments: fanoutArgs } : {}) });
  await ch.bindQueue(fanoutQueue, `${topic}_fanout`, topic);
  return [...queues, fanoutQueue];
}

export function newFanoutQueueName(topic: string): string {
  return `${topic}_fanout_${newUniqueId()}`;
}
