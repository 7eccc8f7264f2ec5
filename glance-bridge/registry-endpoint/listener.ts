import { createServer } from 'node:http';
import { listen, parseListen, type ListenAddress } from '../../common/listen.js';
import type { Config } from '../../conf/index.js';
import { createRegistryApp, type RegistryEndpointDeps, type RegistryEndpointStats } from './registry-app.js';

export interface RegistryEndpoint {
  url: string;
  /** HOST:PORT, as image references name the registry (`[agent] image_registry`, `docker pull`). */
  address: string;
  stats: RegistryEndpointStats;
  close(): Promise<void>;
}

/**
 * Where the registry endpoint listens. A service started on an ephemeral API port (tests, the
 * full-stack harness) gets an ephemeral registry port too, so several can run on one host
 * beside a real berth-images holding the default port.
 */
export function registryAddress(config: Config): ListenAddress | null {
  const value = config.image_store.registry_listen;
  if (!value) return null;
  const addr = parseListen(value);
  const api = parseListen(config.image_store.listen);
  return 'port' in addr && 'port' in api && api.port === 0 ? { host: addr.host, port: 0 } : addr;
}

/** Starts the read-only Registry v2 endpoint; null when `[image_store] registry_listen` is empty. */
export async function startRegistryEndpoint(config: Config, deps: RegistryEndpointDeps): Promise<RegistryEndpoint | null> {
  const addr = registryAddress(config);
  if (!addr) return null;
  const { app, stats } = createRegistryApp(deps);
  const server = createServer(app.callback());
  const url = await listen(server, addr);
  deps.log.info({ url }, 'registry endpoint listening');
  return {
    url,
    address: new URL(url).host,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
