import { createServer, type Server } from 'node:http';
import type { Sequelize } from 'sequelize';
import type { AgentClient } from '../../agent/client/types.js';
import { listen, parseListen } from '../../common/listen.js';
import type { Logger } from '../../common/log.js';
import type { MetricsRegistry } from '../../common/metrics.js';
import { createStatusApp, type ReadinessCheck } from '../../common/status.js';

/** What the compute node needs to serve: the broker, the database, the agent (and nova registration in nova mode). */
export function computeReadiness(deps: {
  broker: { readonly connected: boolean };
  db: Sequelize;
  agent: AgentClient;
  plane?: { readonly registered: boolean };
}): ReadinessCheck[] {
  return [
    { name: 'broker', probe: () => Promise.resolve(deps.broker.connected) },
    {
      name: 'database',
      probe: async () => {
        await deps.db.query('SELECT 1');
      },
    },
    { name: 'agent', probe: async () => (await deps.agent.health()).ok },
    // nova mode: the node is of no use to the scheduler until it has registered.
    ...(deps.plane ? [{ name: 'nova', probe: () => Promise.resolve(deps.plane!.registered) }] : []),
  ];
}

export interface StatusServer {
  url: string;
  close(): Promise<void>;
}

/**
 * Serves /healthz, /readyz and /metrics on `address` (`[DEFAULT] status_listen`). A status port
 * already taken is logged and the node runs on without one: losing metrics must not stop compute.
 */
export async function startStatusServer(
  address: string,
  deps: { registry: MetricsRegistry; checks: ReadinessCheck[]; log: Logger },
): Promise<StatusServer | null> {
  const server: Server = createServer(createStatusApp(deps).callback());
  let url: string;
  try {
    url = await listen(server, parseListen(address));
  } catch (err) {
    deps.log.error({ err: (err as Error).message, status_listen: address }, 'status server not started');
    return null;
  }
  deps.log.info({ url }, 'status server listening');
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
