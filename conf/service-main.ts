import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { makePrivateDirSync } from '../common/fs.js';
import { LogLevelControl, reloadLogLevel } from '../common/log-level.js';
import { createLogger, type Logger } from '../common/log.js';
import { redactor } from '../common/redact.js';
import { ConfigError, defaultConfigFiles, loadConfig } from './load.js';
import type { Config } from './options.js';
import { secretValues } from './secrets.js';

/** A running service, as its main module starts it. */
export interface StartedService {
  stop(): Promise<void>;
}

/**
 * True when `moduleUrl` (a main module's import.meta.url) is the script node was started with.
 * Node names the main module by its real path, so a script started through a symlinked directory
 * is compared by its real path too.
 */
export function isMain(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (!script) return false;
  let real = script;
  try {
    real = realpathSync(script);
  } catch {
    /* not a file: compared as given */
  }
  return moduleUrl === pathToFileURL(real).href || moduleUrl === pathToFileURL(script).href;
}

/** The logger a service runs with: its level from `[DEFAULT] debug`, every secret of the configuration redacted. */
export function serviceLogger(service: string, config: Config): Logger {
  return createLogger(service, { debug: config.DEFAULT.debug, secrets: secretValues(config) });
}

/**
 * What every Berth service does as a process: read the configuration (exit 2 naming every problem),
 * make its state folder private, log with every secret redacted, re-apply `[DEFAULT] debug` on
 * SIGHUP (other options need a restart), stop cleanly on SIGTERM/SIGINT, and exit 1 with the
 * reason (secrets redacted) when start-up fails.
 */
export function runService(service: string, start: (config: Config, log: Logger) => Promise<StartedService>): void {
  const readConfig = (): Config => loadConfig({ files: defaultConfigFiles() });
  let redact = (text: string): string => text;
  const fail = (err: unknown, status: number): never => {
    const message = err instanceof ConfigError ? `invalid configuration:\n${err.message}` : err instanceof Error ? err.message : String(err);
    process.stderr.write(`${service}: ${redact(message)}\n`);
    process.exit(status);
  };
  const main = async (): Promise<void> => {
    let config: Config;
    try {
      config = readConfig();
    } catch (err) {
      return fail(err, err instanceof ConfigError ? 2 : 1);
    }
    redact = redactor(secretValues(config));
    makePrivateDirSync(config.DEFAULT.state_path, { tighten: true });
    const log = serviceLogger(service, config);
    const levels = new LogLevelControl(log);
    const running = await start(config, log);
    process.on('SIGHUP', () => reloadLogLevel(levels, log, () => readConfig().DEFAULT.debug));
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, `${service} stopping`);
      running.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'unclean shutdown');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  };
  main().catch((err: unknown) => fail(err, 1));
}
