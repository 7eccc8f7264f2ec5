import { pathToFileURL } from 'node:url';
import { createAgentClient } from '../agent/client/http.js';
import { readAgentToken } from '../agent/client/token.js';
import { createLogger } from '../common/log.js';
import { ConfigError, defaultConfigFiles, loadConfig } from '../conf/load.js';
import type { Config } from '../conf/options.js';
import { createDriver, type Driver } from './service.js';


export async function startDriver(config: Config): Promise<Driver> {
  const log = createLogger('berth-compute', { debug: config.DEFAULT.debug });
  const agent = createAgentClient({
    url: config.agent.url, token: readAgentToken(config.agent.token, config.DEFAULT.state_path), timeoutMs: config.agent.request_timeout * 1000, retries: config.agent.connect_retries,
  });
  const driver = await createDriver({ config, agent, log });
  log.info({ host: config.DEFAULT.host, queues: driver.server.queues }, 'berth-compute consuming');
  return driver;
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig({ files: defaultConfigFiles() });
  } catch (err) {
    if (err instanceof ConfigError) { process.stderr.write(`berth-compute: invalid configuration:\n${err.message}\n`); process.exit(2); }
    throw err;
  }
  const driver = await startDriver(config);
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
