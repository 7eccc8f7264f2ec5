import Koa from 'koa';
import { Router } from '@koa/router';
import { commonError, type BerthError } from '../common/errors.js';
import { errorMiddleware, logAppErrors, readJsonBody, requestIdMiddleware, requireUuid } from '../common/koa.js';
import type { Logger } from '../common/log.js';
import type { ImageService } from '../glance-bridge/client/types.js';
import { createAgentMetrics, requestMetrics } from './agent-metrics.js';
import { agentAuth, type AgentAuthStrategy, type AgentKeystoneAuth } from './auth.js';
import { ConfigDrives } from './config-drive.js';
import { ImageCleaner } from './image-cleanup.js';
import { ImageRecords } from './image-records.js';
import { ImageCache } from './images.js';
import { InstanceManager } from './instances.js';
import { PROMETHEUS_CONTENT_TYPE } from '../common/metrics.js';
import { readiness } from '../common/status.js';
import { requirePool } from './network/ipv4.js';
import { ProjectNetworks, type ProjectNetworking } from './network/project-networks.js';
import { OPENAPI_DOCUMENT } from './openapi.js';
import { Snapshots } from './snapshots.js';
import { Consoles, type Listen } from './console/consoles.js';
import { parsePortRange } from './console/ports.js';
import { consoleRoutes } from './console/routes.js';
import type { ContainerRuntime } from './runtime/types.js';
import { VolumeRecords } from './volumes/records.js';
import { keepVolumes, volumeRoutes } from './volumes/routes.js';
import type { NamespaceMounts } from './volumes/ns-mounts.js';
import type { VolumeDevices } from './volumes/types.js';
import { Volumes } from './volumes/volumes.js';
import { queryInt, validateAction, validateFlavorChange, validateInstanceSpec, validateSnapshot, validateVifAttach } from './validate.js';

export interface AgentAppDeps {
  runtime: ContainerRuntime;
  images: ImageService;
  /** The bearer token of the token strategies. */
  token: string;
  /** Default: the bearer token alone. */
  authStrategy?: AgentAuthStrategy;
  keystone?: AgentKeystoneAuth;
  log: Logger;
  maxBodyBytes: number;
  /** Seconds between SIGTERM and SIGKILL when a request names no timeout. */
  stopTimeout: number;
  /** Config drives live under `<statePath>/instances/<uuid>/`. */
  statePath: string;
  injectSshKeys: boolean;
  /** The resolvers guests use, for their network_data.json; default Docker's embedded one (`[docker] network_attach = engine`). */
  nameservers?: () => Promise<string[]>;
  /** CIDR the project networks' subnets are carved from, and their prefix length. */
  subnetPool: string;
  subnetPrefix: number;
  /** The project networks instances join; default ProjectNetworks over `runtime` and the pool. */
  networks?: ProjectNetworking;
  /** Images the agent loaded and nothing used for this long are removed by the clean-up; 0 (default) keeps them. */
  imageCacheMaxUnusedSeconds?: number;
  /** `[agent] image_registry`: pull imported images from the image service's registry endpoint there. */
  imageRegistry?: string;
  /** `[volumes]`: local volumes over these devices, records under `path`; absent: none. */
  volumes?: { devices: VolumeDevices; path: string; maxSizeGb: number; maxTotalGb: number; ns?: NamespaceMounts };
  /** `[serial_console]`; default: disabled. */
  serialConsole?: { enabled: boolean; portRange: string; host: string; tokenTtlSeconds: number; proxyClients?: string[]; listen?: Listen };
}

/** The app and the periodic work its owner schedules. */
export interface AgentServices {
  app: Koa;
  imageCleaner: ImageCleaner;
  networks: ProjectNetworking;
  consoles: Consoles;
  volumes: Volumes | null;
}

const MAX_TIMEOUT = 3600;
const MAX_TAIL = 10_000;

/**
 * The agent's HTTP API (docs/agent-api.md, docs/agent-openapi.json); validates, then hands work
 * to InstanceManager, Snapshots or ProjectNetworks.
 */
export function createApp(deps: AgentAppDeps): Koa {
  return createAgentServices(deps).app;
}

export function createAgentServices(deps: AgentAppDeps): AgentServices {
  const metrics = createAgentMetrics(deps.runtime);
  const networks = deps.networks ?? new ProjectNetworks(deps.runtime, requirePool(deps.subnetPool, deps.subnetPrefix), deps.subnetPrefix);
  const records = ImageRecords.at(deps.statePath);
  const images = new ImageCache(deps.images, deps.runtime, {
    events: { cacheHit: () => metrics.imageCacheHits.inc(), fetched: (result) => metrics.imageFetches.inc({ result }) },
    records,
    log: deps.log,
    ...(deps.imageRegistry ? { registry: deps.imageRegistry } : {}),
  });
  const imageCleaner = new ImageCleaner({
    runtime: deps.runtime,
    records,
    forgetGlanceId: (g) => images.forget(g),
    maxUnusedMs: (deps.imageCacheMaxUnusedSeconds ?? 0) * 1000,
    log: deps.log,
  });
  const volumes = deps.volumes
    ? new Volumes({
        devices: deps.volumes.devices,
        records: VolumeRecords.open(deps.volumes.path, deps.log),
        container: async (uuid) => {
          const c = await deps.runtime.inspect(uuid);
          return c ? { projectId: c.projectId, pid: c.state === 'running' ? (c.pid ?? null) : null } : null;
        },
        ...(deps.volumes.ns ? { ns: deps.volumes.ns } : {}),
        log: deps.log.child({ component: 'volumes' }),
        maxSizeGb: deps.volumes.maxSizeGb,
        maxTotalGb: deps.volumes.maxTotalGb,
      })
    : null;
  const manager = new InstanceManager({
    runtime: deps.runtime,
    images,
    networks,
    drives: new ConfigDrives(deps.statePath, deps.injectSshKeys, deps.nameservers),
    log: deps.log,
    stopTimeout: deps.stopTimeout,
    ...(volumes ? { volumes } : {}),
  });
  const snapshots = new Snapshots({
    runtime: deps.runtime,
    images: deps.images,
    instances: manager,
    log: deps.log,
    onFinished: (result) => metrics.snapshots.inc({ result }),
    baseLayers: async (uuid) => {
      const glanceId = (await deps.runtime.inspect(uuid))?.glanceImageId;
      if (!glanceId) return [];
      return (await deps.runtime.inspectImage(await images.ensureImage(glanceId)))?.layers ?? [];
    },
  });
  const sc = deps.serialConsole ?? { enabled: false, portRange: '10000:20000', host: '127.0.0.1', tokenTtlSeconds: 600 };
  const consoles = new Consoles({
    enabled: sc.enabled,
    range: parsePortRange(sc.portRange),
    host: sc.host,
    ttlMs: sc.tokenTtlSeconds * 1000,
    proxyClients: sc.proxyClients ?? [],
    ...(sc.listen ? { listen: sc.listen } : {}),
    runtime: deps.runtime,
    log: deps.log.child({ component: 'console' }),
  });
  const authenticated = agentAuth({ strategy: deps.authStrategy ?? 'token', token: deps.token, ...(deps.keystone ? { keystone: deps.keystone } : {}) });
  const app = new Koa();
  logAppErrors(app, deps.log);
  app.use(requestMetrics(metrics));
  app.use(requestIdMiddleware(deps.log));
  app.use(errorMiddleware(deps.log));

  const open = new Router();
  open.get('/healthz', async (ctx) => {
    const runtime = await deps.runtime.ping();
    ctx.status = runtime ? 200 : 503;
    ctx.body = { ok: runtime, runtime };
  });
  // Ready when its dependency answers: dockerd (the image service is asked per request and
  // retried; an agent without it still serves every instance it has).
  open.get('/readyz', async (ctx) => {
    const r = await readiness([{ name: 'runtime', probe: () => deps.runtime.ping() }]);
    ctx.status = r.status;
    ctx.body = r.body;
  });
  open.get('/metrics', authenticated, async (ctx) => {
    ctx.type = PROMETHEUS_CONTENT_TYPE;
    ctx.body = await metrics.registry.render();
  });
  app.use(open.routes());

  const api = new Router({ prefix: '/v1' });
  api.use(authenticated);
  api.get('/openapi.json', (ctx) => {
    ctx.body = OPENAPI_DOCUMENT;
  });
  api.get('/instances', async (ctx) => {
    ctx.body = { instances: await manager.list() };
  });
  api.put('/instances/:uuid', async (ctx) => {
    const uuid = requireUuid(ctx.params.uuid, 'uuid');
    const spec = validateInstanceSpec(await readJsonBody(ctx, deps.maxBodyBytes));
    const { instance, created } = await manager.create(uuid, spec);
    ctx.status = created ? 201 : 200;
    ctx.body = { instance };
  });
  api.get('/instances/:uuid', async (ctx) => {
    ctx.body = { instance: await manager.get(requireUuid(ctx.params.uuid, 'uuid')) };
  });
  api.delete('/instances/:uuid', async (ctx) => {
    const uuid = requireUuid(ctx.params.uuid, 'uuid');
    const timeout = ctx.query.timeout === undefined ? undefined : queryInt(ctx.query.timeout, 'timeout', 0, MAX_TIMEOUT);
    await manager.delete(uuid, timeout, keepVolumes(ctx));
    await consoles.forget(uuid);
    ctx.status = 204;
  });
  api.post('/instances/:uuid/action', async (ctx) => {
    const uuid = requireUuid(ctx.params.uuid, 'uuid');
    const action = validateAction(await readJsonBody(ctx, deps.maxBodyBytes));
    ctx.body = { instance: await manager.act(uuid, action) };
  });
  api.put('/instances/:uuid/flavor', async (ctx) => {
    const uuid = requireUuid(ctx.params.uuid, 'uuid');
    const flavor = validateFlavorChange(await readJsonBody(ctx, deps.maxBodyBytes));
    ctx.body = { instance: await manager.resize(uuid, flavor) };
  });
  api.put('/instances/:uuid/vifs/:port_id', async (ctx) => {
    const uuid = requireUuid(ctx.params.uuid, 'uuid');
    const vif = validateVifAttach(await readJsonBody(ctx, deps.maxBodyBytes), requireUuid(ctx.params.port_id, 'port_id'));
    ctx.body = { vif: await manager.attachVif(uuid, vif) };
  });
  api.delete('/instances/:uuid/vifs/:port_id', async (ctx) => {
    await manager.detachVif(requireUuid(ctx.params.uuid, 'uuid'), requireUuid(ctx.params.port_id, 'port_id'));
    ctx.status = 204;
  });
  api.get('/instances/:uuid/console', async (ctx) => {
    const uuid = requireUuid(ctx.params.uuid, 'uuid');
    const tail = queryInt(ctx.query.tail, 'tail', 100, MAX_TAIL);
    ctx.body = { output: await manager.console(uuid, tail) };
  });
  consoleRoutes(api, consoles);
  api.get('/instances/:uuid/stats', async (ctx) => {
    ctx.body = { stats: await manager.stats(requireUuid(ctx.params.uuid, 'uuid')) };
  });
  api.get('/images/:image_id', async (ctx) => {
    ctx.body = { image: await images.onHost(requireUuid(ctx.params.image_id, 'image_id')) };
  });
  api.put('/images/:image_id', async (ctx) => {
    const imageId = requireUuid(ctx.params.image_id, 'image_id');
    // An explicit fetch checks the engine again rather than trusting what was verified before.
    images.forget(imageId);
    await images.ensureImage(imageId);
    ctx.body = { image: await images.onHost(imageId) };
  });
  api.post('/images/cleanup', async (ctx) => {
    ctx.body = { removed: await imageCleaner.clean() };
  });
  api.post('/instances/:uuid/snapshot', async (ctx) => {
    const uuid = requireUuid(ctx.params.uuid, 'uuid');
    const { imageId, opts } = validateSnapshot(await readJsonBody(ctx, deps.maxBodyBytes));
    const { task, created } = await snapshots.start(uuid, imageId, opts);
    ctx.status = created ? 202 : 200;
    ctx.body = { snapshot: task };
  });
  api.get('/snapshots/:image_id', (ctx) => {
    ctx.body = { snapshot: snapshots.get(requireUuid(ctx.params.image_id, 'image_id')) };
  });
  api.get('/networks', async (ctx) => {
    ctx.body = { networks: await networks.list() };
  });
  api.post('/networks/prune', async (ctx) => {
    ctx.body = { removed: await networks.prune() };
  });
  if (volumes) volumeRoutes(api, volumes, (uuid, op) => manager.exclusive(uuid, op), deps.maxBodyBytes);
  app.use(api.routes());
  app.use(api.allowedMethods({ throw: true, methodNotAllowed: () => methodNotAllowed(), notImplemented: () => methodNotAllowed() }));
  return { app, imageCleaner, networks, consoles, volumes };
}

const methodNotAllowed = (): BerthError => commonError('METHOD_NOT_ALLOWED', 'method not allowed on this resource');
