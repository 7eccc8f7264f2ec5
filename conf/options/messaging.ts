import { str, int, float, bool, choice, type OptionSpec } from './spec.js';

/** The broker connection (oslo.messaging's rabbit driver) and notifications. */
export const messagingSections = {
  oslo_messaging_rabbit: {
    amqp_durable_queues: bool(false, 'Declare exchange nova and the compute queues durable (must match the other nova services).'),
    amqp_auto_delete: bool(false, 'Declare exchange nova and the topic queues auto-delete (must match the other nova services).'),
    rabbit_ha_queues: bool(
      false,
      'Add x-ha-policy: all to declared queues (classic mirrored queues, RabbitMQ before 3.0; later releases mirror by policy only). Cannot be combined with rabbit_quorum_queue.',
    ),
    rabbit_quorum_queue: bool(
      false,
      'Declare the topic queues (compute, compute.<host>, notifications) as quorum queues (x-queue-type: quorum): durable and replicated over the cluster, surviving the loss of a minority of nodes. Implies durable exchanges and queues (amqp_durable_queues is then ignored). Must match the other nova services.',
    ),
    rabbit_quorum_delivery_limit: int(
      0,
      'x-delivery-limit of quorum queues: a message redelivered more often is dropped (or dead-lettered, by a broker policy). 0 sets no limit.',
      0,
      2147483647,
    ),
    rabbit_quroum_max_memory_length: int(
      0,
      "x-max-in-memory-length of quorum queues: most messages kept in memory (oslo's spelling of the option). 0 sets no limit.",
      0,
      2147483647,
    ),
    rabbit_quroum_max_memory_bytes: int(
      0,
      "x-max-in-memory-bytes of quorum queues: most bytes kept in memory (oslo's spelling of the option). 0 sets no limit.",
      0,
      Number.MAX_SAFE_INTEGER,
    ),
    rabbit_transient_queues_ttl: int(1800, 'x-expires, in seconds, of fanout and reply queues; 0 omits it.', 0, 86400 * 365),
    heartbeat_timeout_threshold: int(60, 'AMQP heartbeat timeout in seconds; 0 disables heartbeats.', 0, 3600),
    kombu_failover_strategy: choice(
      'round-robin',
      ['round-robin', 'shuffle'] as const,
      'How the next host of a transport_url with several hosts is chosen when the current one fails: round-robin (in order) or shuffle (at random). The list is shuffled once at start-up either way, as oslo does.',
    ),
    rabbit_retry_interval: int(1, 'Seconds to wait after every host of transport_url has failed once, before trying them again.', 0, 3600),
    rabbit_retry_backoff: int(2, 'Seconds added to that wait after each further round of failed attempts.', 0, 3600),
    rabbit_interval_max: int(
      30,
      'Longest wait between rounds of reconnect attempts, in seconds (the wait stops growing past this plus rabbit_retry_interval, as kombu has it).',
      1,
      3600,
    ),
    kombu_reconnect_delay: float(
      1,
      'Seconds to wait after losing an established connection before reconnecting (and after each failed attempt while reconnecting).',
      0,
      4.5,
    ),
    kombu_missing_consumer_retry_timeout: int(
      60,
      "Seconds a reply is retried (every 0.25 s) while the caller's reply queue is missing, e.g. while the caller fails over to another broker node.",
      0,
      3600,
    ),
    ssl: bool(false, 'Connect to the broker over TLS (also: an amqps:// transport_url, or ?ssl=1 in it).'),
    ssl_ca_file: str(
      '',
      "CA certificates (PEM) the broker's certificate must chain to. Empty: the connection is encrypted but the broker is not authenticated.",
    ),
    ssl_cert_file: str('', 'Client certificate (PEM) offered to the broker, for brokers that require one (or log in with EXTERNAL).'),
    ssl_key_file: str('', 'Private key (PEM) of ssl_cert_file; empty: the key is read from ssl_cert_file.'),
    ssl_version: str('', 'Pin one TLS version: TLSv1, TLSv1_1, TLSv1_2, or SSLv23 (negotiate, as empty does). Empty is best.'),
    ssl_enforce_hostname_verification: bool(
      false,
      "Also check the broker's host name against its certificate when ssl_ca_file is set (oslo's default: the chain is verified, the name is not).",
    ),
  },
  notifications: {
    notification_format: choice(
      'versioned',
      ['versioned', 'unversioned', 'both'] as const,
      "Which notifications to emit: nova's versioned ones, the legacy unversioned ones, or both.",
    ),
    driver: choice('messagingv2', ['messagingv2', 'messaging', 'noop'] as const, 'messagingv2 (enveloped), messaging (legacy bare body) or noop (none).'),
    versioned_notifications_topic: str('versioned_notifications', 'Topic of versioned notifications (routing key <topic>.<priority>).'),
    legacy_notifications_topic: str('notifications', 'Topic of legacy notifications.'),
  },
} as const satisfies Record<string, Record<string, OptionSpec>>;
