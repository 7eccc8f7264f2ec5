import { createAgentClient } from '../agent/client/http.js';
import { agentClientAuth } from '../agent/client/token.js';
import { createVolumeClient } from '../agent/client/volumes-http.js';
import type { Logger } from '../common/log.js';
import { isMain, runService, serviceLogger } from '../conf/service-main.js';
import type { Config } from '../conf/options.js';
import { startStatusServer, type StatusServer } from './http/status.js';
import { createDriver, type Driver } from './service.js';

export interface RunningDriver extends Driver {
  /** The status server (/healthz, /readyz, /metrics), or null when disabled or its port was taken. */
  status: StatusServer | null;
}

export async function startDriver(config: Config, log: Logger = serviceLogger('berth-compute', config)): Promise<RunningDriver> {
  const agent = createAgentClient({
    url: config.agent.url,
    ...agentClientAuth(config),
    timeoutMs: config.agent.request_timeout * 1000,
    retries: config.agent.connect_retries,
  });
  // The same agent's local volumes, which moves of an instance cannot take along.
  const volumes = createVolumeClient({ url: config.agent.url, ...agentClientAuth(config), timeoutMs: config.agent.request_timeout * 1000 });
  const driver = await createDriver({ config, agent, volumes, log });
  const status = config.DEFAULT.status_listen
    ? await startStatusServer(config.DEFAULT.status_listen, {
        registry: driver.metrics.registry,
        checks: driver.readiness,
        log: log.child({ component: 'status' }),
      })
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

if (isMain(import.meta.url)) {
  runService('berth-compute', async (config, log) => {
    const driver = await startDriver(config, log);
    return { stop: () => driver.stop() };
  });
}
