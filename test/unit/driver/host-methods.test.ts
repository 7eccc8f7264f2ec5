import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { commonError } from '../../../common/errors.js';
import { silentLogger } from '../../../common/log.js';
import { berthEndpoint } from '../../../driver/compute/berth-endpoint.js';
import { computeEndpoint } from '../../../driver/compute/endpoint.js';
import { Maintenance } from '../../../driver/compute/maintenance.js';
import { ComputeManager } from '../../../driver/compute/manager.js';
import { InstanceStore } from '../../../driver/compute/store.js';
import { openDriverDatabase } from '../../../driver/db/index.js';
import { Notifier } from '../../../driver/notify/notifier.js';
import type { Endpoint } from '../../../driver/rpc/dispatcher.js';
import { RpcFailure } from '../../../driver/rpc/failure.js';
import { buildAndRunInstance, evacuateInstance, imageDict, instancePrimitive, migrationPrimitive } from '../../../tools/lib/nova-requests.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';
import { FakePublisher } from '../../fakes/publisher.js';
import { TEST_RABBIT as rabbit, testResources } from '../../support/driver-fixtures.js';

const resources = testResources({ memory_mb: 1024, reserved_host_memory_mb: 0 });

const invoke = (ep: Endpoint, method: string, args: Record<string, unknown>): Promise<unknown> => {
  const spec = ep.methods[method]!;
  return Promise.resolve(spec.handler({ request_id: 'req-00000000-0000-4000-8000-000000000000' }, ep.deserialize ? ep.deserialize(args, spec) : args));
};
const send = (ep: Endpoint, msg: Record<string, unknown>) => invoke(ep, String(msg.method), msg.args as Record<string, unknown>);

describe('host-wide methods: cache_images and host_maintenance_mode', () => {
  let agent: FakeAgentClient;
  let store: InstanceStore;
  let manager: ComputeManager;
  let ep: Endpoint;
  let state: string;

  beforeEach(async () => {
    state = mkdtempSync(join(tmpdir(), 'berth-maint-'));
    agent = new FakeAgentClient();
    store = new InstanceStore(await openDriverDatabase('sqlite://'));
    const notifier = new Notifier(new FakePublisher(), {
      exchange: 'nova',
      host: 'n1',
      format: 'versioned',
      driver: 'messagingv2',
      versionedTopic: 'versioned_notifications',
      legacyTopic: 'notifications',
      rabbit,
      log: silentLogger(),
    });
    manager = new ComputeManager({
      host: 'n1',
      node: 'n1',
      store,
      agent,
      notifier,
      resources,
      log: silentLogger(),
      maintenanceFile: join(state, 'maintenance'),
    });
    ep = computeEndpoint(manager, agent);
  });
  afterEach(async () => {
    await store.close();
    rmSync(state, { recursive: true, force: true });
  });

  const build = async () => {
    const inst = instancePrimitive({ image_id: 'img-a', flavor: { vcpus: 1, memory_mb: 64 } });
    const uuid = (inst['nova_object.data'] as { uuid: string }).uuid;
    await send(ep, buildAndRunInstance(inst, imageDict({ id: 'img-a' })));
    return (await store.get(uuid))!;
  };

  it("cache_images answers per image as nova's cache_image contract: existing, cached, error, one failure not stopping the rest", async () => {
    agent.knownImages = new Set(['img-a', 'img-b', 'img-c']);
    await agent.fetchImage('img-a');
    agent.failNext('hostImage', commonError('SERVICE_UNREACHABLE', 'image service unreachable'));
    const result = await invoke(ep, 'cache_images', { image_ids: ['img-c', 'img-a', 'img-b', 'img-unknown'] });
    assert.deepEqual(result, { 'img-c': 'error', 'img-a': 'existing', 'img-b': 'cached', 'img-unknown': 'error' });
    assert.ok(agent.cachedImages.has('img-b'));
    // Asked again, what was fetched is there.
    assert.deepEqual(await invoke(ep, 'cache_images', { image_ids: ['img-b', 'img-c'] }), { 'img-b': 'existing', 'img-c': 'cached' });
    await assert.rejects(invoke(ep, 'cache_images', { image_ids: 'img-a' }), (e: RpcFailure) => e.className === 'InvalidInput');
  });

  it('in maintenance a build fails (no container) and the running instances are left alone; leaving it lets builds in again', async () => {
    const running = await build();
    assert.equal(await invoke(ep, 'host_maintenance_mode', { host: 'n1', mode: true }), 'on_maintenance');
    const refused = await build();
    assert.equal(refused.vm_state, 'error');
    assert.equal((await store.latestFault(refused.uuid))?.details, 'ComputeServiceUnavailable');
    assert.equal(await agent.getInstance(refused.uuid), null);
    assert.equal((await agent.getInstance(running.uuid))?.power_state, 'running');
    assert.equal((await store.get(running.uuid))!.vm_state, 'active');
    const cap = (await invoke(berthEndpoint('n1', store, manager), 'get_host_capacity', {})) as { maintenance: boolean };
    assert.equal(cap.maintenance, true);
    assert.equal(await invoke(ep, 'host_maintenance_mode', { host: 'n1', mode: false }), 'off_maintenance');
    assert.equal((await build()).vm_state, 'active');
    await assert.rejects(invoke(ep, 'host_maintenance_mode', { host: 'n1', mode: 'on' }), (e: RpcFailure) => e.className === 'InvalidInput');
  });

  it('in maintenance an evacuation to the node is refused before anything is done', async () => {
    await invoke(ep, 'host_maintenance_mode', { host: 'n1', mode: true });
    const inst = instancePrimitive({ image_id: 'img-a', flavor: { vcpus: 1, memory_mb: 64 }, host: 'gone', vm_state: 'active', task_state: 'rebuilding' });
    const uuid = (inst['nova_object.data'] as { uuid: string }).uuid;
    const migration = migrationPrimitive({ instance_uuid: uuid, host: 'gone', dest: null, migration_type: 'evacuation', status: 'accepted' });
    await assert.rejects(send(ep, evacuateInstance(inst, migration)), (e: RpcFailure) => e.className === 'ComputeServiceUnavailable');
    assert.equal(await agent.getInstance(uuid), null);
    assert.equal(await store.get(uuid), null);
  });

  it('the window is kept across a restart, and told to the control plane again', async () => {
    const told: boolean[] = [];
    const plane = {
      setHostEnabled: async (enabled: boolean) => {
        told.push(enabled);
        return enabled ? ('enabled' as const) : ('disabled' as const);
      },
    };
    const file = join(state, 'sub', 'maintenance');
    await new Maintenance(plane, 'n1', file, silentLogger()).set(true);
    const again = new Maintenance(plane, 'n1', file, silentLogger());
    assert.equal(again.active, true);
    await again.restore();
    assert.deepEqual(told, [false, false]);
    await again.set(false);
    assert.equal(new Maintenance(plane, 'n1', file, silentLogger()).active, false);
    assert.deepEqual(told, [false, false, true]);
  });
});
