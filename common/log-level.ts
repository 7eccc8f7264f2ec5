import type { Logger } from './log.js';

/**
 * Lets a running service change its log level (SIGHUP). pino's child loggers copy the level when
 * they are made, so the long-lived ones are remembered here and changed with the root; children
 * made later take the root's level by themselves.
 */
export class LogLevelControl {
  private readonly children = new Set<WeakRef<Logger>>();
  private made = 0;

  constructor(private readonly root: Logger) {
    root.onChild = (child) => {
      this.children.add(new WeakRef(child));
      // Per-request children come and go: forget the collected ones now and then.
      if (++this.made % 1000 === 0) for (const ref of this.children) if (!ref.deref()) this.children.delete(ref);
    };
  }

  get level(): string {
    return this.root.level;
  }

  /** Returns the previous level. */
  set(level: string): string {
    const previous = this.root.level;
    this.root.level = level;
    for (const ref of this.children) {
      const child = ref.deref();
      if (child) child.level = level;
      else this.children.delete(ref);
    }
    return previous;
  }
}

/**
 * The SIGHUP reload every service does: re-read the configuration and apply `[DEFAULT] debug`.
 * BERTH_LOG_LEVEL, when set, wins as it does at start-up. A file that no longer parses changes
 * nothing and is logged.
 */
export function reloadLogLevel(control: LogLevelControl, log: Logger, readDebug: () => boolean): void {
  let debug: boolean;
  try {
    debug = readDebug();
  } catch (err) {
    log.error({ err: (err as Error).message }, 'SIGHUP: configuration not reloaded');
    return;
  }
  const wanted = process.env.BERTH_LOG_LEVEL || (debug ? 'debug' : 'info');
  const previous = control.set(wanted);
  log.info(
    { log_level: wanted, previous_log_level: previous, debug },
    previous === wanted ? 'SIGHUP: configuration re-read, log level unchanged' : 'SIGHUP: log level changed',
  );
}
