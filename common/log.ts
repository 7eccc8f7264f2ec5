import { pino, type Logger } from 'pino';

export type { Logger };

/** One structured JSON logger per service; `component` names the part that logs. */
export function createLogger(service: string, opts: { debug?: boolean; destination?: number } = {}): Logger {
  const level = process.env.BERTH_LOG_LEVEL ?? (opts.debug ? 'debug' : 'info');
  return pino({ name: service, level, base: { service } }, pino.destination(opts.destination ?? 1));
}

/** A logger that drops everything: for unit tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
