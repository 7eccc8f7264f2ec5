import { silentLogger } from '../../../common/log.js';
import { rabbitDefaults } from '../../../driver/rpc/broker-connect.js';
import { AmqpTransport } from '../../../driver/rpc/amqp-transport.js';
import { transportConformance } from '../../conformance/transport.js';
import { AMQP_URL } from '../../support/amqp.js';

/** The amqplib transport on the local RabbitMQ, held to the rules the in-process fake follows. */
transportConformance('AmqpTransport on RabbitMQ', async () => ({
  open: () =>
    new AmqpTransport({
      url: AMQP_URL,
      rabbit: { ...rabbitDefaults(), rabbit_interval_max: 1 },
      prefetch: 0,
      log: silentLogger(),
      connectionName: 'berth-conformance',
    }),
  cleanup: async () => {},
}));
