import { declareOptionsProblem } from '../../common/broker-options.js';
import { newUniqueId } from './envelope.js';
import type { TopologyChannel } from './transport.js';

/** The operator's [oslo_messaging_rabbit] options that change how objects are declared. */
export interface RabbitDeclareOptions {
  amqp_durable_queues: boolean;
  amqp_auto_delete: boolean;
  rabbit_ha_queues: boolean;
  rabbit_quorum_queue: boolean;
  rabbit_transient_queues_ttl: number;
  rabbit_quorum_delivery_limit?: number;
  rabbit_quroum_max_memory_length?: number;
  rabbit_quroum_max_memory_bytes?: number;
}

/** Exchanges and topic queues are durable when asked, and always with quorum queues (oslo's `durable`). */
function durable(o: RabbitDeclareOptions): boolean {
  return o.amqp_durable_queues || o.rabbit_quorum_queue;
}

/**
 * Queue arguments and flags of topic queues exactly as oslo.messaging declares them (contract §2):
 * x-ha-policy with rabbit_ha_queues; x-queue-type quorum with rabbit_quorum_queue, plus
 * x-delivery-limit, x-max-in-memory-length and x-max-in-memory-bytes when those are set.
 */
export function topicQueueFlags(o: RabbitDeclareOptions): { durable: boolean; autoDelete: boolean; arguments?: Record<string, unknown> } {
  const problem = declareOptionsProblem(o);
  if (problem) throw new Error(`Configuration error: ${problem}`);
  const args: Record<string, unknown> = {};
  if (o.rabbit_ha_queues) args['x-ha-policy'] = 'all';
  if (o.rabbit_quorum_queue) {
    args['x-queue-type'] = 'quorum';
    if (o.rabbit_quorum_delivery_limit) args['x-delivery-limit'] = o.rabbit_quorum_delivery_limit;
    if (o.rabbit_quroum_max_memory_length) args['x-max-in-memory-length'] = o.rabbit_quroum_max_memory_length;
    if (o.rabbit_quroum_max_memory_bytes) args['x-max-in-memory-bytes'] = o.rabbit_quroum_max_memory_bytes;
  }
  return { durable: durable(o), autoDelete: o.amqp_auto_delete, ...(Object.keys(args).length ? { arguments: args } : {}) };
}

export function transientQueueArgs(o: RabbitDeclareOptions): Record<string, unknown> | undefined {
  const args: Record<string, unknown> = {};
  if (o.rabbit_transient_queues_ttl > 0) args['x-expires'] = o.rabbit_transient_queues_ttl * 1000;
  if (o.rabbit_ha_queues) args['x-ha-policy'] = 'all';
  return Object.keys(args).length ? args : undefined;
}

export async function declareControlExchange(ch: TopologyChannel, exchange: string, o: RabbitDeclareOptions): Promise<void> {
  await ch.assertExchange(exchange, 'topic', { durable: durable(o), autoDelete: o.amqp_auto_delete });
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
