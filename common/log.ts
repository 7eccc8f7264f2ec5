import { pino, type DestinationStream, type Logger } from 'pino';
import { redactor } from './redact.js';

export type { Logger };

export interface LoggerOptions {
  debug?: boolean;
  /** File descriptor or stream to write to (stdout by default). */
  destination?: number | DestinationStream;
  /** Values never to print (passwords, tokens): replaced by `***` in every line, whatever logged them. */
  secrets?: Iterable<string>;
}

/** One structured JSON logger per service; `component` names the part that logs. */
export function createLogger(service: string, opts: LoggerOptions = {}): Logger {
  const level = process.env.BERTH_LOG_LEVEL ?? (opts.debug ? 'debug' : 'info');
  // The last step before a line is written, so an error message or a URL carrying a secret is
  // caught too, not only fields a redaction path would name.
  const hooks = opts.secrets ? { streamWrite: redactor(opts.secrets) } : {};
  return pino(
    { name: service, level, base: { service }, hooks },
    typeof opts.destination === 'object' ? opts.destination : pino.destination(opts.destination ?? 1),
  );
}

/** A logger that drops everything: for unit tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
