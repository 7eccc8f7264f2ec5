import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentClient } from '../../agent/client/types.js';
import { silentLogger, type Logger } from '../../common/log.js';
import { loadConfig } from '../../conf/load.js';
import type { Config } from '../../conf/options.js';
import { newUniqueId } from '../../driver/rpc/envelope.js';
import { createDriver, type Driver } from '../../driver/service.js';

/**
 * A compute driver on the real broker, isolated from other runs by its own host name, control
 * exchange and state directory.
 */
export interface DriverHarness {
  driver: Driver;
  config: Config;
  host: string;
  exchange: string;
  stateDir: string;
  stop(): Promise<void>;
}

export async function startDriverHarness(
  agent: AgentClient,
  overrides: Record<string, Record<string, unknown>> = {},
  log: Logger = silentLogger(),
): Promise<DriverHarness> {
  const id = newUniqueId().slice(0, 8);
  const stateDir = mkdtempSync(join(tmpdir(), 'berth-driver-'));
  const host = (overrides.DEFAULT?.host as string | undefined) ?? `it-${id}`;
  const exchange = (overrides.DEFAULT?.control_exchange as string | undefined) ?? `berth-it-${id}`;
  const config = loadConfig({
    env: {},
    overrides: {
      ...overrides,
      DEFAULT: {
        transport_url: process.env.BERTH_TEST_TRANSPORT_URL ?? 'rabbit://guest:guest@127.0.0.1:5672/',
        state_path: stateDir,
        ...overrides.DEFAULT,
        host,
        control_exchange: exchange,
      },
      database: { connection: `sqlite:///${join(stateDir, 'driver.sqlite')}`, ...overrides.database },
    },
  });
  const driver = await createDriver({ config, agent, log });
  return {
    driver,
    config,
    host,
    exchange,
    stateDir,
    async stop() {
      await driver.stop(5000);
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
