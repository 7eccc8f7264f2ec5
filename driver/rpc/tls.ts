import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';

/** The [oslo_messaging_rabbit] TLS options, by oslo's names. */
export interface BrokerTlsOptions {
  ssl: boolean;
  ssl_ca_file: string;
  ssl_cert_file: string;
  ssl_key_file: string;
  ssl_version: string;
  ssl_enforce_hostname_verification: boolean;
}

/** oslo's ssl_version values (case-insensitive) and the Node protocol each pins. */
const VERSIONS: Record<string, ConnectionOptions['secureProtocol'] | undefined> = {
  '': undefined,
  sslv23: undefined,
  tlsv1: 'TLSv1_method',
  tlsv1_1: 'TLSv1_1_method',
  tlsv1_2: 'TLSv1_2_method',
};

export class BrokerTlsError extends Error {
  readonly code = 'BROKER_TLS_CONFIG';
}

/**
 * The TLS socket options for a broker connection, with oslo's semantics:
 * - a CA file: the broker's certificate chain must verify against it (CERT_REQUIRED); the host
 *   name is checked only with ssl_enforce_hostname_verification;
 * - no CA file: the connection is encrypted but the broker is not authenticated (oslo hands kombu
 *   `ssl=True`, which verifies nothing);
 * - a certificate (and key) file: the client certificate offered to the broker;
 * - ssl_version pins one protocol version; empty (or SSLv23) negotiates the best both sides have.
 * Files are read here, so a missing or unreadable one is reported at connect time with its option.
 */
export function tlsSocketOptions(o: BrokerTlsOptions, servername: string): ConnectionOptions {
  const key = o.ssl_version.toLowerCase();
  if (!(key in VERSIONS)) throw new BrokerTlsError(`[oslo_messaging_rabbit] ssl_version ${o.ssl_version} is not one of TLSv1, TLSv1_1, TLSv1_2, SSLv23`);
  const opts: ConnectionOptions = {};
  const protocol = VERSIONS[key];
  if (protocol) opts.secureProtocol = protocol;
  // SNI only for names: Node refuses an IP address as servername.
  if (!/^[\d.]+$/.test(servername) && !servername.includes(':')) opts.servername = servername;
  if (o.ssl_ca_file) {
    opts.ca = readOption('ssl_ca_file', o.ssl_ca_file);
    opts.rejectUnauthorized = true;
    if (!o.ssl_enforce_hostname_verification) opts.checkServerIdentity = () => undefined;
  } else {
    opts.rejectUnauthorized = false;
  }
  if (o.ssl_cert_file) {
    opts.cert = readOption('ssl_cert_file', o.ssl_cert_file);
    // oslo passes keyfile only when set; the key may then live in the certificate file.
    opts.key = readOption(o.ssl_key_file ? 'ssl_key_file' : 'ssl_cert_file', o.ssl_key_file || o.ssl_cert_file);
  } else if (o.ssl_key_file) {
    throw new BrokerTlsError('[oslo_messaging_rabbit] ssl_key_file is set but ssl_cert_file is not');
  }
  return opts;
}

function readOption(option: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new BrokerTlsError(`[oslo_messaging_rabbit] ${option} ${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
