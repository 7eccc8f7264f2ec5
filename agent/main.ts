import { agentTokenFile } from './client/token.js';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Agent } from 'node:http';
import type { Config } from '../conf/index.js';
import { isMain, runService, serviceLogger } from '../conf/service-main.js';
import { listen, parseListen } from '../common/listen.js';
import type { Logger } from '../common/log.js';
import { incomingValidator } from '../common/keystone/index.js';
import type { ImageService } from '../glance-bridge/client/types.js';
import { createAgentServices } from './app.js';
import type { AgentKeystoneAuth } from './auth.js';
import { GuestFirewall, type GuestFirewallSpec } from './network/guest-firewall.js';
import { parsePortRange } from './console/ports.js';
import { formatCidr, parseCidr } from './network/ipv4.js';
import { hostGuestNameservers } from './network/resolv.js';
import { DockerRuntime } from './runtime/docker.js';
import type { ContainerRuntime } from './runtime/types.js';
import { LoopVolumeDevices } from './volumes/loop-devices.js';
import { PYTHON, PythonNamespaceMounts } from './volumes/ns-mounts.js';
import { followStarts } from './volumes/start-follower.js';
import { DockerApi } from './runtime/docker-api.js';
import { DockerEventHub } from './runtime/docker-event-hub.js';

const FIREWALL_REFRESH_MS = 5 * 60_000;

export interface RunningAgent {
  /** Where the agent answers: http://HOST:PORT or unix:///PATH. */
  url: string;
  token: string;
  close(): Promise<void>;
}

/** Seams for tests and the all-in-one tool; by default the agent builds the real ones from config. */
export interface AgentOverrides {
  runtime?: ContainerRuntime;
  images?: ImageService;
  log?: Logger;
}

export async function startAgent(config: Config, overrides: AgentOverrides = {}): Promise<RunningAgent> {
  const log = overrides.log ?? serviceLogger('berth-agent', config);
  const keystone = incomingKeystoneAuth(config);
  // A keystone-only agent has no bearer token; none is generated, so none can leak.
  const token = config.agent.auth_strategy === 'keystone' ? '' : config.agent.token || loadOrCreateToken(config.DEFAULT.state_path);
  const docker = overrides.runtime
    ? undefined
    : new DockerRuntime({
        hostUrl: config.docker.host_url,
        apiVersion: config.docker.api_version,
        restartPolicy: config.docker.restart_policy,
        host: config.DEFAULT.host,
        networkAttach: config.docker.network_attach,
        statePath: config.DEFAULT.state_path,
      });
  const runtime = overrides.runtime ?? docker!;
  const images = overrides.images ?? (await defaultImageService(config));
  const { app, imageCleaner, networks, consoles, volumes } = createAgentServices({
    runtime,
    images,
    token,
    authStrategy: config.agent.auth_strategy,
    ...(keystone ? { keystone } : {}),
    log,
    maxBodyBytes: config.agent.max_body_bytes,
    stopTimeout: config.docker.stop_timeout,
    statePath: config.DEFAULT.state_path,
    injectSshKeys: config.agent.inject_ssh_keys,
    // A container the agent plugs in resolves through the host's nameservers, as dockerd wrote them.
    ...(config.docker.network_attach === 'agent' ? { nameservers: () => hostGuestNameservers() } : {}),
    subnetPool: config.agent.project_subnet_pool,
    subnetPrefix: config.agent.project_subnet_prefix,
    imageCacheMaxUnusedSeconds: config.agent.image_cache_max_unused_seconds,
    imageRegistry: config.agent.image_registry,
    ...(config.volumes.enabled ? { volumes: volumeOptions(config, log) } : {}),
    serialConsole: {
      enabled: config.serial_console.enabled,
      portRange: config.serial_console.port_range,
      host: config.serial_console.proxyclient_address,
      tokenTtlSeconds: config.serial_console.token_ttl,
      proxyClients: config.serial_console.proxy_clients,
    },
  });
  const cleanupEvery = config.agent.image_cache_cleanup_interval * 1000;
  const cleanup =
    cleanupEvery > 0 && config.agent.image_cache_max_unused_seconds > 0
      ? setInterval(() => {
          imageCleaner.clean().catch((err: unknown) => log.warn({ err }, 'image cache clean-up failed'));
        }, cleanupEvery)
      : undefined;
  cleanup?.unref();
  // Volumes are mounted on the host again (after a reboot) before any instance is created.
  await volumes?.restore();
  // One connection to the engine's event stream, shared by the plugs and the volumes (started below).
  const events = docker ? new DockerEventHub(new DockerApi(config.docker.host_url, config.docker.api_version), log) : undefined;
  // Containers the engine restarts itself get their hot-attached volumes again.
  if (events && volumes && config.volumes.hot_attach) followStarts(events, (uuid) => volumes.afterStart(uuid), log);
  const server = createServer(app.callback());
  const url = await listen(server, parseListen(config.agent.listen));
  let firewallRefresh: NodeJS.Timeout | undefined;
  if (docker && config.agent.guest_firewall) {
    // Before the agent reports itself ready: no guest it starts is ever unfiltered.
    const firewall = new GuestFirewall(guestFirewallSpec(config, url), log);
    await firewall.install().catch(async (err: unknown) => {
      await new Promise((resolve) => server.close(resolve));
      throw err;
    });
    // Written again now and then: another tool flushing the host's rules does not leave guests unfiltered for long.
    firewallRefresh = setInterval(() => {
      firewall.install().catch((err: unknown) => log.error({ err }, 'could not refresh the guest firewall'));
    }, FIREWALL_REFRESH_MS);
    firewallRefresh.unref();
  }
  // Containers the agent plugged in need it again whenever something else starts them.
  const plugWatch = events ? docker?.keepPlugged(log, events) : undefined;
  events?.start();
  // Networks left by instances removed while the agent was down (or by older versions) go now.
  if (docker) {
    await networks.prune().then(
      (removed) => removed.length && log.info({ projects: removed }, 'removed unused project networks'),
      (err: unknown) => log.warn({ err }, 'could not prune unused project networks at start-up'),
    );
  }
  log.info({ url, runtime: config.docker.host_url, runtime_reachable: await runtime.ping() }, 'berth-agent listening');
  return {
    url,
    token,
    close: () =>
      new Promise<void>((resolve, reject) => {
        clearInterval(cleanup);
        clearInterval(firewallRefresh);
        plugWatch?.stop();
        events?.stop();
        void consoles.close();
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeIdleConnections();
      }),
  };
}

/** Hot attach runs its syscalls through /usr/bin/python3; without it attaches wait for a rebuild. */
function hotAttachPossible(log: Logger): boolean {
  if (existsSync(PYTHON)) return true;
  log.warn({ python: PYTHON }, '[volumes] hot_attach needs python3: attaches to existing instances apply at their next rebuild');
  return false;
}

/** `[volumes]`: loop devices under `path`. */
function volumeOptions(config: Config, log: Logger): NonNullable<Parameters<typeof createAgentServices>[0]['volumes']> {
  const path = config.volumes.path;
  return {
    devices: new LoopVolumeDevices({ root: path, log: log.child({ component: 'volumes' }) }),
    path,
    maxSizeGb: config.volumes.max_size_gb,
    maxTotalGb: config.volumes.max_total_gb,
    ...(config.volumes.hot_attach && hotAttachPossible(log) ? { ns: new PythonNamespaceMounts() } : {}),
  };
}

/**
 * Token validation for `[agent] auth_strategy` keystone and token+keystone, by the
 * `[keystone_authtoken]` service user and the `[agent] keystone_roles` (both checked with the
 * configuration, conf/load.ts).
 */
export function incomingKeystoneAuth(config: Config, agent?: Agent): AgentKeystoneAuth | undefined {
  if (config.agent.auth_strategy === 'token') return undefined;
  const incoming = incomingValidator(`[agent] auth_strategy = ${config.agent.auth_strategy}`, config.keystone_authtoken, agent);
  return { ...incoming, roles: config.agent.keystone_roles };
}

/**
 * What guests may not reach on this host: the ports of Berth's services as configured here (the
 * agent's as it listens, `url`), and the extra ones the operator names.
 */
export function guestFirewallSpec(config: Config, url: string): GuestFirewallSpec {
  const ports = [url, config.glance.api_url, config.agent.image_registry, config.image_store.listen, config.image_store.registry_listen].map(portOf);
  const pool = parseCidr(config.agent.project_subnet_pool);
  if (!pool) throw new Error(`[agent] project_subnet_pool ${JSON.stringify(config.agent.project_subnet_pool)} is not an IPv4 CIDR`);
  return {
    chain: config.agent.guest_firewall_chain,
    sources: [formatCidr(pool)],
    blockedPorts: [...ports, ...config.agent.guest_blocked_ports.map(Number)].filter((p): p is number => p !== null && p !== 0),
    allowMetadata: config.agent.guest_metadata_access,
    // The consoles' endpoints listen on proxyclient_address, which may be an address guests reach.
    ...(config.serial_console.enabled ? { blockedRanges: [parsePortRange(config.serial_console.port_range)] } : {}),
  };
}

/** The TCP port of a URL (its scheme's default when it names none) or of HOST:PORT; null for a unix socket or nothing. */
function portOf(value: string): number | null {
  if (!value || value.startsWith('unix:') || value.startsWith('/')) return null;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    const u = new URL(value);
    return u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
  }
  const addr = parseListen(value);
  return 'port' in addr ? addr.port : null;
}

/** Imported only when no ImageService is injected, so in-process starts need no image client. */
async function defaultImageService(config: Config): Promise<ImageService> {
  const { createImageClient } = await import('../glance-bridge/client/http.js');
  // With [glance] auth_url set (a real Glance), every call carries a token of the [glance] service user.
  // A noauth image service believes X-Roles: the agent reads it as its admin, as it reads a
  // Keystone one as its service user, and checks a tenant's access itself (ImageCache). Images
  // private to an instance's project (what moves it to another node) are then readable here.
  return createImageClient({
    url: config.glance.api_url,
    keystone: config.glance,
    ...(config.image_store.auth_strategy === 'noauth' ? { roles: ['admin'] } : {}),
  });
}

/**
 * The token the driver must present when none is configured: generated once, kept readable only
 * by the agent's user, and reused across restarts so a running driver keeps working. When the
 * agent runs as root in a state folder owned by another user (the units run berth-compute as
 * `berth`, who owns /var/lib/berth), the file is handed to that user, still 0600, so the driver
 * reads it and no one else does.
 */
export function loadOrCreateToken(statePath: string): string {
  const file = agentTokenFile(statePath);
  let token = '';
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (!token) {
    mkdirSync(statePath, { recursive: true, mode: 0o700 });
    token = randomBytes(32).toString('hex');
    writeFileSync(file, `${token}\n`, { mode: 0o600 });
  }
  shareWithStateOwner(statePath, file);
  return token;
}

function shareWithStateOwner(statePath: string, file: string): void {
  if (process.getuid?.() !== 0) return;
  const owner = statSync(statePath);
  const st = statSync(file);
  if (st.uid !== owner.uid || st.gid !== owner.gid) chownSync(file, owner.uid, owner.gid);
  if ((st.mode & 0o777) !== 0o600) chmodSync(file, 0o600);
}

if (isMain(import.meta.url)) {
  runService('berth-agent', async (config, log) => {
    const agent = await startAgent(config, { log });
    return { stop: () => agent.close() };
  });
}
