import { connect, type ChannelModel } from 'amqplib';
import { schema, type Config } from '../../conf/options.js';
import { FailoverPlan } from './failover.js';
import { tlsSocketOptions, type BrokerTlsOptions } from './tls.js';
import { applyQueryOverrides } from '../../common/broker-options.js';
import { hostLabel, parseTransportUrl, type BrokerHost, type TransportUrl } from '../../common/transport-url.js';

/** The [oslo_messaging_rabbit] options that shape a connection (oslo's names). */
export interface BrokerConnectOptions extends BrokerTlsOptions {
  heartbeat_timeout_threshold: number;
  kombu_failover_strategy: 'round-robin' | 'shuffle';
  rabbit_retry_interval: number;
  rabbit_retry_backoff: number;
  rabbit_interval_max: number;
  kombu_reconnect_delay: number;
}

/** What a client connects with: the parsed URL and the options after the URL's query overrides. */
export interface ResolvedBroker {
  url: TransportUrl;
  options: BrokerConnectOptions;
  /** TLS on: amqps://, or ssl set in the options or the URL's query. */
  tls: boolean;
}

/**
 * Parses `transport_url` and applies its query parameters over the options of the same name, as
 * oslo's ConfigOptsProxy does (`rabbit://h:5672/?ssl=1`). A query value of the wrong type is an error.
 */
export function resolveBroker(transportUrl: string, options: BrokerConnectOptions): ResolvedBroker {
  const url = parseTransportUrl(transportUrl);
  const resolved = applyQueryOverrides(options, url.query);
  return { url, options: resolved, tls: url.tls || resolved.ssl };
}

export function failoverPlan(b: ResolvedBroker, random?: () => number): FailoverPlan {
  return new FailoverPlan(b.url.hosts, {
    strategy: b.options.kombu_failover_strategy,
    retryIntervalSeconds: b.options.rabbit_retry_interval,
    retryBackoffSeconds: b.options.rabbit_retry_backoff,
    intervalMaxSeconds: b.options.rabbit_interval_max,
    reconnectDelaySeconds: b.options.kombu_reconnect_delay,
    ...(random ? { random } : {}),
  });
}

export interface OpenOptions {
  connectionName: string;
  /** TCP + TLS + AMQP handshake budget (kombu's connect_timeout is 5 s). */
  timeoutMs: number;
  heartbeatSeconds?: number;
}

/** One connection attempt to one host of the broker. */
export async function openBrokerConnection(b: ResolvedBroker, host: BrokerHost, o: OpenOptions): Promise<ChannelModel> {
  const socket: Record<string, unknown> = {
    // Replies are small and latency-bound: no Nagle delay.
    noDelay: true,
    timeout: o.timeoutMs,
    clientProperties: { connection_name: o.connectionName },
    ...(b.tls ? tlsSocketOptions(b.options, host.hostname) : {}),
  };
  return connect(
    {
      protocol: b.tls ? 'amqps' : 'amqp',
      hostname: host.hostname,
      port: host.port,
      username: host.username,
      password: host.password,
      // amqplib percent-decodes the vhost it is given once more.
      vhost: encodeURIComponent(b.url.vhost),
      heartbeat: o.heartbeatSeconds ?? b.options.heartbeat_timeout_threshold,
      locale: 'en_US',
    },
    socket,
  );
}

export { hostLabel };

/** Every [oslo_messaging_rabbit] option at its default (for clients built without a config file, and tests). */
export function rabbitDefaults(): Config['oslo_messaging_rabbit'] {
  return Object.fromEntries(Object.entries(schema.oslo_messaging_rabbit).map(([k, spec]) => [k, spec.default])) as unknown as Config['oslo_messaging_rabbit'];
}
