import type { Agent } from 'node:http';
import type { AgentClient } from '../../agent/client/types.js';
import { createAgentClient } from '../../agent/client/http.js';
import { keystoneSession, type KeystoneSession } from '../../common/keystone/index.js';
import { defaultConfigFiles, loadConfig } from '../../conf/load.js';
import type { Config } from '../../conf/options.js';
import { agentClientAuth } from '../../agent/client/token.js';
import { createImageClient } from '../../glance-bridge/client/http.js';
import type { ImageService } from '../../glance-bridge/client/types.js';
import type { RpcClient } from '../lib/rpc-client.js';
import type { Format } from './output.js';
import { resolveOsCredentials } from './os-cloud.js';

/** How long the CLI gives the broker to accept a connection. */
export const BROKER_CONNECT_TIMEOUT_MS = 5000;

export { UsageError } from './usage-error.js';

/** What every command gets: the configuration and lazily made clients. */
export interface GlobalOptions {
  config?: string[];
  format?: Format;
  column?: string[];
  host?: string;
  osCloud?: string;
  osImageUrl?: string;
}

export class CliContext {
  readonly config: Config;
  readonly format: Format;
  readonly host: string;
  private rpc: RpcClient | null = null;
  private session: KeystoneSession | null | undefined;

  /** `connections`: the HTTP connection pool of the image clients (tests hand in an in-process one). */
  constructor(
    readonly opts: GlobalOptions,
    private readonly connections: { agent?: Agent } = {},
  ) {
    this.config = loadConfig({ files: opts.config?.length ? opts.config : defaultConfigFiles() });
    this.format = opts.format ?? 'table';
    this.host = opts.host ?? this.config.DEFAULT.host;
  }

  /** `--os-image-url` (or OS_IMAGE_URL): the image API to send the OpenStack credentials to. */
  get osImageUrl(): string {
    return this.opts.osImageUrl ?? process.env.OS_IMAGE_URL ?? '';
  }

  /**
   * A Keystone session from `--os-cloud`/OS_CLOUD or the OS_* variables, resolved on first use so
   * commands that need no Keystone never read clouds.yaml; null when no credentials are given.
   */
  osSession(): KeystoneSession | null {
    if (this.session === undefined) {
      const found = resolveOsCredentials(this.opts.osCloud ? { cloud: this.opts.osCloud } : {});
      this.session = found ? keystoneSession(found.creds) : null;
    }
    return this.session;
  }

  /**
   * The image service: with OpenStack credentials, `--os-image-url` or else the catalog's image
   * endpoint, sent the token; without, [glance] api_url as before.
   */
  images(): ImageService {
    const session = this.osSession();
    if (!session) return createImageClient({ url: this.osImageUrl || this.config.glance.api_url, ...this.connections });
    return createImageClient({ url: this.osImageUrl, session, ...this.connections });
  }

  /**
   * The image service of the node ([glance] api_url), for server commands: the images they name
   * must be the ones the node's agent fetches, whatever OpenStack credentials the shell holds.
   */
  nodeImages(): ImageService {
    // A noauth image service believes X-Roles: the operator on the node acts as its admin, so a
    // registry image `server create --image docker://…` imports is public, as `image import`'s are.
    const roles = this.config.image_store.auth_strategy === 'noauth' ? { roles: ['admin'] } : {};
    return createImageClient({ url: this.config.glance.api_url, ...roles, ...this.connections });
  }

  /** Where registry imports go (the glance-bridge): `--os-image-url` or [glance] api_url, with the token if any. */
  importer(): ImageService {
    const session = this.osSession();
    return createImageClient({ url: this.osImageUrl || this.config.glance.api_url, ...(session ? { session } : {}), ...this.connections });
  }

  agent(): AgentClient {
    return createAgentClient({ url: this.config.agent.url, ...agentClientAuth(this.config), retries: 0, timeoutMs: 10_000 });
  }

  /** The broker client; it also listens to the versioned notifications (for `--wait`). */
  async rpcClient(): Promise<RpcClient> {
    if (this.rpc) return this.rpc;
    const n = this.config.notifications;
    const eventKeys = [`${n.versioned_notifications_topic}.info`, `${n.versioned_notifications_topic}.error`];
    const c = this.config;
    // One plain attempt first: a refused password or connection fails at once, with its cause,
    // where the client below would retry until its timeout.
    // The AMQP client is loaded here, not at start: commands without the broker never pay for it.
    const [{ probeBroker }, { RpcClient }] = await Promise.all([import('./broker-probe.js'), import('../lib/rpc-client.js')]);
    await probeBroker(c.DEFAULT.transport_url, c.oslo_messaging_rabbit, BROKER_CONNECT_TIMEOUT_MS);
    this.rpc = new RpcClient({
      url: c.DEFAULT.transport_url,
      exchange: c.DEFAULT.control_exchange,
      rabbit: c.oslo_messaging_rabbit,
      connectTimeoutMs: BROKER_CONNECT_TIMEOUT_MS,
    });
    await this.rpc.connect(eventKeys);
    return this.rpc;
  }

  /** The RPC routing key of the target node. */
  get computeKey(): string {
    return `compute.${this.host}`;
  }

  async close(): Promise<void> {
    await this.rpc?.close();
  }
}
