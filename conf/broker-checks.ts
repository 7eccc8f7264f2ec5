import { accessSync, constants } from 'node:fs';
import { applyQueryOverrides, declareOptionsProblem, SSL_VERSIONS } from '../common/broker-options.js';
import { parseTransportUrl } from '../common/transport-url.js';
import type { Config } from './options.js';

type Rabbit = Config['oslo_messaging_rabbit'];

/** What is wrong with a transport_url, as oslo would read it; '' when nothing is. */
export function transportUrlProblem(value: string): string {
  try {
    parseTransportUrl(value);
    return '';
  } catch (err) {
    return (err as Error).message.replace(/^transport_url:? ?/, '');
  }
}

/**
 * The broker options that would stop a connection or a declaration: queue types that exclude
 * each other, a TLS version oslo does not know, TLS files that cannot be read, and URL query
 * overrides of the wrong type. Each problem names the options involved.
 */
export function brokerChecks(transportUrl: string, rabbit: Rabbit): string[] {
  const problems: string[] = [];
  let o: Rabbit = rabbit;
  let tls = rabbit.ssl;
  if (!transportUrlProblem(transportUrl)) {
    try {
      const url = parseTransportUrl(transportUrl);
      o = applyQueryOverrides(rabbit, url.query);
      tls = url.tls || o.ssl;
    } catch (err) {
      problems.push(`[DEFAULT] ${(err as Error).message}`);
    }
  }
  const declare = declareOptionsProblem(o);
  if (declare) problems.push(`[oslo_messaging_rabbit] ${declare}`);
  if (o.rabbit_quorum_queue && o.amqp_auto_delete) {
    problems.push('[oslo_messaging_rabbit] rabbit_quorum_queue and amqp_auto_delete are both enabled: RabbitMQ refuses auto-delete quorum queues');
  }
  if (o.ssl_version && !(SSL_VERSIONS as readonly string[]).includes(o.ssl_version.toLowerCase())) {
    problems.push(`[oslo_messaging_rabbit] ssl_version: ${JSON.stringify(o.ssl_version)} is not one of TLSv1, TLSv1_1, TLSv1_2, SSLv23 (or empty)`);
  }
  if (tls) {
    for (const key of ['ssl_ca_file', 'ssl_cert_file', 'ssl_key_file'] as const) {
      const path = o[key];
      if (!path) continue;
      try {
        accessSync(path, constants.R_OK);
      } catch (err) {
        problems.push(`[oslo_messaging_rabbit] ${key}: ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    if (o.ssl_key_file && !o.ssl_cert_file) problems.push('[oslo_messaging_rabbit] ssl_key_file is set but ssl_cert_file is not');
  }
  return problems;
}
