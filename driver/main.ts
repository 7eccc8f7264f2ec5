import { pathToFileURL } from 'node:url';
import { createAgentClient } from '../agent/client/http.js';
import { agentClientAuth } from '../agent/client/token.js';
import { LogLevelControl, reloadLogLevel } from '../common/log-level.js';
import { createLogger, type Logger } from '../common/log.js';
import { ConfigError, defaultConfigFiles, loadConfig } from '../conf/load.js';
import type { Config } from '../conf/options.js';
import { startStatusServer, type StatusServer } from './http/status.js';
import { createDriver, type Driver } from './service.js';

export interface RunningDriver extends Driver {
  /** The status server (/healthz, /readyz, /metrics), or null when disabled or its port was taken. */
  status: StatusServer | null;
}

export async function startDriver(config: Config, log: Logger = createLogger('berth-compute', { debug: config.DEFAULT.debug })): Promise<RunningDriver> {
  const agent = createAgentClient({
    url: config.agent.url, ...agentClientAuth(config), timeoutMs: config.agent.request_timeout * 1000, retries: config.agent.connect_retries,
  });
  const driver = await createDriver({ config, agent, log });
  const status = config.DEFAULT.status_listen
    ? await startStatusServer(config.DEFAULT.status_listen, { registry: driver.metrics.registry, checks: driver.readiness, log: log.child({ component: 'status' }) })
    : null;
  log.info({ host: config.DEFAULT.host, queues: driver.server.queues }, 'berth-compute consuming');
  return {
    ...driver,
    status,
    async stop(timeoutMs?: number) {
      await status?.close();
      await driver.stop(timeoutMs);
    },
  };
}

async function main(): Promise<void> {
  const readConfig = (): Config => loadConfig({ files: defaultConfigFiles() });
  let config: Config;
  try {
    config = readConfig();
  } catch (err) {
    if (err instanceof ConfigError) { process.stderr.write(`berth-compute: invalid configuration:\n${err.message}\n`); process.exit(2); }
    throw err;
  }
  const log = createLogger('berth-compute', { debug: config.DEFAULT.debug });
  const levels = new LogLevelControl(log);
  const driver = await startDriver(config, log);
  // Only the log level is reloaded; other options need a restart (docs/operator-guide.md).
  process.on('SIGHUP', () => reloadLogLevel(levels, log, () => readConfig().DEFAULT.debug));
  const stop = async () => { await driver.stop(); process.exit(0); };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`berth-compute: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
