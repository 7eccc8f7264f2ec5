import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InstanceSpec, SnapshotTask } from '../../../agent/client/types.js';
import { startAgent, type RunningAgent } from '../../../agent/main.js';
import { projectNetworkName } from '../../../agent/network/project-networks.js';
import { LABEL_PROJECT } from '../../../agent/runtime/types.js';
import { parseEndpoint, requestJson } from '../../../common/http-client.js';
import { keystoneSession } from '../../../common/keystone/index.js';
import { silentLogger } from '../../../common/log.js';
import { loadConfig, type Config } from '../../../conf/index.js';
import { createImageClient } from '../../../glance-bridge/client/http.js';
import type { GlanceImage, ImageService } from '../../../glance-bridge/client/types.js';
import { startImageService, type ImageServiceHandle } from '../../../glance-bridge/main.js';
import { buildImage, type BuiltImage } from '../../fakes/image-builder.js';
import { loadTestCloud, openstack, type TestCloud } from '../../support/cloud.js';
import { execIn, removeLabelled, removeNetworks } from '../agent/docker-helpers.js';
import { BUSYBOX, REGISTRY, deleteManifest, dockerHasImage, dockerRemoveImage, pushImage } from './helpers.js';

const PROJECT = `berth-it-glance-${randomBytes(4).toString('hex')}`;

/**
 * The bridge against the test cloud's real Keystone and glance-api (tools/dev/cloud.sh): it
 * exports registry imports into Glance with the cloud's glance service user, python-openstackclient
 * sees them, and an agent configured with the same `[glance]` credentials loads them into dockerd.
 */
describe('glance-bridge with the real Glance and Keystone of the test cloud', function () {
  this.timeout(300_000);
  const dirs: string[] = [];
  const services: ImageServiceHandle[] = [];
  const remoteIds: string[] = [];
  const loadedIds: string[] = [];
  const pushed: [string, BuiltImage][] = [];
  let agent: RunningAgent | undefined;
  let cloud: TestCloud;
  let glance: ImageService;
  let busyboxInGlance: string | undefined;

  const agentCall = <T>(method: string, path: string, body?: unknown) =>
    requestJson<T>(
      parseEndpoint(agent!.url),
      {
        method,
        path,
        body,
        headers: { authorization: `Bearer ${agent!.token}` },
        timeoutMs: 120_000,
      },
      'agent',
    );
  const spec = (image_id: string, project = PROJECT): InstanceSpec => ({
    image_id,
    flavor: { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} },
    name: 'glance-vm',
    hostname: 'glance-guest',
    project_id: project,
    user_id: 'tester',
    metadata: {},
    user_data: null,
    key_data: null,
    fixed_ip: null,
  });

  /** `[glance]` and `[keystone_authtoken]` as the glance service user of the cloud; api_url empty: the catalog's. */
  const cloudConfig = (more: Record<string, Record<string, unknown>> = {}): Config => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-real-glance-'));
    dirs.push(dir);
    const user = { auth_url: cloud.keystoneUrl, username: cloud.glance.username, password: cloud.glance.password, project_name: cloud.serviceProject };
    return loadConfig({
      env: {},
      overrides: {
        DEFAULT: { state_path: dir },
        image_store: { listen: '127.0.0.1:0', registry_listen: '' },
        registry: { insecure_hosts: [REGISTRY], allowed_internal: [REGISTRY] },
        glance: { api_url: '', ...user },
        keystone_authtoken: user,
        agent: { listen: '127.0.0.1:0', token: '' },
        ...more,
      },
    });
  };
  const startBridge = async (config: Config) => {
    const service = await startImageService(config, { log: silentLogger() });
    services.push(service);
    return { service, client: createImageClient({ url: service.url, requestTimeoutMs: 120_000, pollIntervalMs: 50 }) };
  };

  before(async () => {
    cloud = loadTestCloud();
    const c = cloudConfig();
    glance = createImageClient({ url: '', keystone: c.glance });
  });
  after(async () => {
    await agent?.close();
    await removeLabelled(`${LABEL_PROJECT}=${PROJECT}`);
    await removeNetworks([projectNetworkName(PROJECT)]);
    for (const id of remoteIds) await glance.deleteImage(id).catch(() => undefined);
    for (const id of loadedIds) await dockerRemoveImage(id).catch(() => undefined);
    for (const [repo, built] of pushed) await deleteManifest(repo, built.manifestDigest).catch(() => undefined);
    for (const s of services) await s.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('exports the busybox import into Glance: openstack image show has it active, container_format docker', async () => {
    const { client } = await startBridge(cloudConfig());
    const local = await client.importImage(BUSYBOX);
    const remote = await client.exportImage!(local.id, { visibility: 'private' });
    remoteIds.push(remote.id);
    busyboxInGlance = remote.id;
    const shown = await openstack<Record<string, unknown> & { properties?: Record<string, unknown> }>(['image', 'show', remote.id], { json: true });
    assert.equal(shown.status, 'active');
    assert.equal(shown.container_format, 'docker');
    assert.equal(shown.disk_format, 'raw');
    assert.equal(shown.checksum, local.checksum);
    assert.equal(shown.size, local.size);
    const props = { ...shown, ...(shown.properties ?? {}) };
    assert.equal(props.docker_image, local.docker_image);
    assert.equal(props.berth_source_digest, local.docker_digest);
    assert.equal(props.docker_image_id, local.docker_image_id);
  });

  it('an agent with [glance] credentials fetches an exported image from Glance and loads it into dockerd', async () => {
    const built = await buildImage({ layers: [{ 'srv/real-glance.bin': randomBytes(32 * 1024) }] });
    const repo = 'berth/it-real-glance';
    await pushImage(repo, 'v1', built);
    pushed.push([repo, built]);
    const config = cloudConfig();
    const { client } = await startBridge(config);
    const local = await client.importImage(`docker://${REGISTRY}/${repo}:v1`);
    const dockerId = local.docker_image_id!;
    loadedIds.push(dockerId);
    assert.equal(await dockerHasImage(dockerId), false);
    const remote: GlanceImage = await client.exportImage!(local.id);
    remoteIds.push(remote.id);

    agent = await startAgent(config, { log: silentLogger() });
    const res = await agentCall<{ image: { present: boolean; docker_image_id: string } }>('PUT', `/v1/images/${remote.id}`);
    assert.equal(res.body.image.present, true);
    assert.equal(res.body.image.docker_image_id, dockerId);
    assert.equal(await dockerHasImage(dockerId), true);
  });

  it('a snapshot lands in Glance with its docker_image_id and boots again from there', async () => {
    assert.ok(busyboxInGlance && agent, 'the tests above exported busybox and started the agent');
    const uuid = randomUUID();
    // The instance belongs to the project that owns the private image it boots (the glance
    // service user's, which exported it), as its snapshot will: the agent lends an image only
    // to a project that may read it.
    const project = (await glance.getImage(busyboxInGlance))!.owner!;
    await agentCall('PUT', `/v1/instances/${uuid}`, spec(busyboxInGlance, project));
    await execIn(`berth-${uuid}`, ['sh', '-c', `echo ${uuid} > /snapshot-marker`]);
    const target = await glance.createImage({ name: `berth-it-snapshot-${uuid.slice(0, 8)}`, container_format: 'docker', disk_format: 'raw' });
    remoteIds.push(target.id);
    let task = (await agentCall<{ snapshot: SnapshotTask }>('POST', `/v1/instances/${uuid}/snapshot`, { image_id: target.id })).body.snapshot;
    for (let i = 0; i < 600 && task.state !== 'active' && task.state !== 'failed'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      task = (await agentCall<{ snapshot: SnapshotTask }>('GET', `/v1/snapshots/${target.id}`)).body.snapshot;
    }
    assert.equal(task.state, 'active', JSON.stringify(task.error));
    const stored = await glance.getImage(target.id);
    assert.equal(stored?.status, 'active');
    assert.match(String(stored?.docker_image_id), /^sha256:[0-9a-f]{64}$/);
    loadedIds.push(stored!.docker_image_id!);
    const clone = randomUUID();
    await agentCall('PUT', `/v1/instances/${clone}`, spec(target.id, project));
    assert.equal((await execIn(`berth-${clone}`, ['cat', '/snapshot-marker'])).trim(), uuid);
  });

  it('a bridge with auth_strategy = keystone takes tokens of the real Keystone and refuses requests without one', async () => {
    const config = cloudConfig({ image_store: { listen: '127.0.0.1:0', registry_listen: '', auth_strategy: 'keystone' } });
    const { service } = await startBridge(config);
    const anonymous = await fetch(`${service.url}/v2/images`);
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.headers.get('www-authenticate'), `Keystone uri="${cloud.keystoneUrl}"`);
    const token = await keystoneSession(config.glance).token();
    const listed = await fetch(`${service.url}/v2/images`, { headers: { 'x-auth-token': token } });
    assert.equal(listed.status, 200);
    const forged = await fetch(`${service.url}/v2/images`, { headers: { 'x-auth-token': `${token}x` } });
    assert.equal(forged.status, 401);
  });
});
