import assert from 'node:assert/strict';
import { topicQueueFlags, transientQueueArgs } from '../../../driver/rpc/topology.js';

const BASE = { amqp_durable_queues: false, amqp_auto_delete: false, rabbit_ha_queues: false, rabbit_quorum_queue: false, rabbit_transient_queues_ttl: 1800 };

/** Queue flags and arguments as oslo.messaging's _get_queue_arguments and Connection.durable make them. */
describe('queue declarations as oslo makes them', () => {
  it('quorum queues: x-queue-type quorum, durable whatever amqp_durable_queues says, limits only when set', () => {
    assert.deepEqual(topicQueueFlags({ ...BASE, rabbit_quorum_queue: true }), { durable: true, autoDelete: false, arguments: { 'x-queue-type': 'quorum' } });
    assert.deepEqual(
      topicQueueFlags({
        ...BASE,
        rabbit_quorum_queue: true,
        rabbit_quorum_delivery_limit: 5,
        rabbit_quroum_max_memory_length: 100,
        rabbit_quroum_max_memory_bytes: 1048576,
      }),
      {
        durable: true,
        autoDelete: false,
        arguments: { 'x-queue-type': 'quorum', 'x-delivery-limit': 5, 'x-max-in-memory-length': 100, 'x-max-in-memory-bytes': 1048576 },
      },
    );
  });

  it('classic queues: durable and auto-delete as configured, x-ha-policy with rabbit_ha_queues, no quorum limits', () => {
    assert.deepEqual(topicQueueFlags(BASE), { durable: false, autoDelete: false });
    assert.deepEqual(topicQueueFlags({ ...BASE, amqp_durable_queues: true, rabbit_quorum_delivery_limit: 5 }), { durable: true, autoDelete: false });
    assert.deepEqual(topicQueueFlags({ ...BASE, rabbit_ha_queues: true }), { durable: false, autoDelete: false, arguments: { 'x-ha-policy': 'all' } });
  });

  it('quorum and HA together are refused, as oslo raises', () => {
    assert.throws(() => topicQueueFlags({ ...BASE, rabbit_quorum_queue: true, rabbit_ha_queues: true }), /quorum or classic mirrored/);
  });

  it('reply and fanout queues stay classic (x-expires, x-ha-policy), quorum or not', () => {
    assert.deepEqual(transientQueueArgs({ ...BASE, rabbit_quorum_queue: true }), { 'x-expires': 1800000 });
  });
});
