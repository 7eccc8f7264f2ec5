import type { AgentClient } from '../../agent/client/types.js';
import { createAgentClient } from '../../agent/client/http.js';
import { BerthError } from '../../common/errors.js';
import { defaultConfigFiles, loadConfig } from '../../conf/load.js';
import type { Config } from '../../conf/options.js';
import { readAgentToken } from '../../agent/client/token.js';
import { createImageClient } from '../../glance-bridge/client/http.js';
import type { ImageService } from '../../glance-bridge/client/types.js';
import { RpcClient } from '../lib/rpc-client.js';
import type { Format } from './output.js';

/** What every command gets: the configuration and lazily made clients. */
export interface GlobalOptions { config?: string[]; format?: Format; host?: string }

export class CliContext {
  readonly config: Config;
  readonly format: Format;
  readonly host: string;
  private rpc: RpcClient | null = null;

  constructor(opts: GlobalOptions) {
    this.config = loadConfig({ files: opts.config?.length ? opts.config : defaultConfigFiles() });
    this.format = opts.format ?? 'table';
    this.host = opts.host ?? this.config.DEFAULT.host;
  }

  images(): ImageService {
    return createImageClient({ url: this.config.glance.api_url });
  }

  agent(): AgentClient {
    return createAgentClient({ url: this.config.agent.url, token: readAgentToken(this.config.agent.token, this.config.DEFAULT.state_path), retries: 0, timeoutMs: 10_000 });
  }

  /** The broker client; it also listens to the versioned notifications (for `--wait`). */
  async rpcClient(): Promise<RpcClient> {
    if (this.rpc) return this.rpc;
    const n = this.config.notifications;
    const eventKeys = [`${n.versioned_notifications_topic}.info`, `${n.versioned_notifications_topic}.error`];
    const c = this.config;
    this.rpc = new RpcClient({ url: c.DEFAULT.transport_url, exchange: c.DEFAULT.control_exchange, rabbit: c.oslo_messaging_rabbit, connectTimeoutMs: 5000 });
    await this.rpc.connect(eventKeys);
    return this.rpc;
  }

  /** The RPC routing key of the target node. */
  get computeKey(): string { return `compute.${this.host}`; }

  async close(): Promise<void> { await this.rpc?.close(); }
}

/** A usage error: exit code 2. */
export class UsageError extends BerthError {
  constructor(message: string) { super('USAGE', message, { status: 400 }); }
}
