import { strict as assert } from 'node:assert';
import { silentLogger } from '../../../common/log.js';
import { openDriverDatabase } from '../../../driver/db/index.js';
import { ComputeManager } from '../../../driver/compute/manager.js';
import { InstanceStore } from '../../../driver/compute/store.js';
import { canStart } from '../../../driver/compute/states.js';
import { Notifier } from '../../../driver/notify/notifier.js';
import { decodeInstance } from '../../../driver/objects/instance.js';
import { RpcFailure } from '../../../driver/rpc/failure.js';
import { instancePrimitive } from '../../../tools/lib/nova-requests.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';
import { FakePublisher } from '../../fakes/publisher.js';
import { FakeImageService } from '../../fakes/glance-images.js';
import { agentError } from '../../../agent/client/errors.js';
import { TEST_RABBIT as rabbit, TEST_RESOURCES as resources, testNotifier } from '../../support/driver-fixtures.js';

describe('compute manager (fake agent, in-memory database)', () => {
  let agent: FakeAgentClient;
  let pub: FakePublisher;
  let store: InstanceStore;
  let manager: ComputeManager;
  let images: FakeImageService;
  const ctx = { request_id: 'req-00000000-0000-4000-8000-000000000000', user_id: 'u', project_id: 'p' };
  const newInstance = () => decodeInstance(instancePrimitive({ image_id: 'img', flavor: { vcpus: 1, memory_mb: 64 } }));

  beforeEach(async () => {
    agent = new FakeAgentClient();
    pub = new FakePublisher();
    store = new InstanceStore(await openDriverDatabase('sqlite://'));
    const notifier = testNotifier(pub, 'n1', { format: 'both' });
    images = new FakeImageService();
    manager = new ComputeManager({ host: 'n1', node: 'n1', store, agent, notifier, resources, images, log: silentLogger() });
  });
  afterEach(() => store.close());

  it('builds to active with start/end notifications in both formats and an action', async () => {
    const i = newInstance();
    await manager.buildAndRun(ctx, i, 'img');
    const row = await store.get(i.uuid);
    assert.equal(row?.vm_state, 'active');
    assert.equal(row?.task_state, null);
    assert.equal(row?.power_state, 1);
    assert.deepEqual(pub.events(), ['instance.create.start', 'compute.instance.create.start', 'instance.create.end', 'compute.instance.create.end']);
    assert.equal(pub.published[0]!.routingKey, 'versioned_notifications.info');
    assert.equal(pub.published[1]!.routingKey, 'notifications.info');
    assert.deepEqual(
      (await store.actions(i.uuid)).map((a) => a.result),
      ['Success'],
    );
  });

  it('makes the database durable before each notification leaves, and still notifies when that fails', async () => {
    const seenAtBarrier: number[] = [];
    let fail = false;
    const notifier = new Notifier(pub, {
      exchange: 'nova',
      host: 'n1',
      format: 'both',
      driver: 'messagingv2',
      versionedTopic: 'versioned_notifications',
      legacyTopic: 'notifications',
      rabbit,
      log: silentLogger(),
      beforePublish: async () => {
        seenAtBarrier.push(pub.published.length);
        if (fail) throw new Error('EIO');
      },
    });
    const m = new ComputeManager({ host: 'n1', node: 'n1', store, agent, notifier, resources, images, log: silentLogger() });
    await m.buildAndRun(ctx, newInstance(), 'img');
    // create.start and create.end, each sent in both formats: the barrier came before each pair.
    assert.deepEqual(seenAtBarrier, [0, 2]);
    fail = true;
    await m.buildAndRun(ctx, newInstance(), 'img');
    assert.equal(pub.published.length, 8);
  });

  it('ignores a second build of the same instance', async () => {
    const i = newInstance();
    await manager.buildAndRun(ctx, i, 'img');
    await manager.buildAndRun(ctx, i, 'img');
    assert.equal(agent.calls.filter((c) => c === 'createInstance').length, 1);
  });

  it('serializes concurrent operations on one instance', async () => {
    const i = newInstance();
    agent.createDelayMs = 50;
    await Promise.all([manager.buildAndRun(ctx, i, 'img'), manager.buildAndRun(ctx, i, 'img'), manager.terminate(ctx, i.uuid)]);
    assert.equal((await store.get(i.uuid))?.vm_state, 'deleted');
    assert.equal(agent.calls.filter((c) => c === 'createInstance').length, 1);
  });

  it('leaves no container behind when a build fails, and records the fault', async () => {
    agent.failNext('createInstance', agentError('IMAGE_FETCH_FAILED', 'image img is not a docker image'));
    const i = newInstance();
    await manager.buildAndRun(ctx, i, 'img');
    const row = await store.get(i.uuid);
    assert.equal(row?.vm_state, 'error');
    assert.ok(agent.calls.includes('deleteInstance'));
    const fault = await store.latestFault(i.uuid);
    assert.equal(fault?.details, 'ImageUnacceptable');
    const err = pub.published.find((p) => p.message.event_type === 'instance.create.error')!;
    assert.equal(err.routingKey, 'versioned_notifications.error');
    const payload = err.message.payload as { 'nova_object.data': { fault: { 'nova_object.data': { exception: string } } } };
    assert.equal(payload['nova_object.data'].fault['nova_object.data'].exception, 'ImageUnacceptable');
  });

  it('refuses an action in the wrong state with InstanceInvalidState', async () => {
    const i = newInstance();
    await manager.buildAndRun(ctx, i, 'img');
    await assert.rejects(
      manager.powerAction(ctx, i.uuid, 'unpause', () => agent.instanceAction(i.uuid, { action: 'unpause' })),
      (e: unknown) => e instanceof RpcFailure && e.className === 'InstanceInvalidState' && e.kwargs.code === 400,
    );
    await manager.powerAction(ctx, i.uuid, 'stop', () => agent.instanceAction(i.uuid, { action: 'stop' }));
    assert.equal((await store.get(i.uuid))?.vm_state, 'stopped');
    assert.ok(pub.events().includes('instance.power_off.end'));
  });

  it('finishes a build interrupted by a restart', async () => {
    const i = newInstance();
    await store.insertBuilding({
      uuid: i.uuid,
      display_name: 'x',
      hostname: 'x',
      project_id: 'p',
      user_id: 'u',
      image_ref: 'img',
      flavor: i.flavor,
      host: 'n1',
      node: 'n1',
      spec: {
        image_id: 'img',
        flavor: { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} },
        name: 'x',
        hostname: 'x',
        project_id: 'p',
        user_id: 'u',
        metadata: {},
        user_data: null,
        key_data: null,
        fixed_ip: null,
      },
      nova: {},
    });
    assert.equal(await manager.recoverInterrupted(), 1);
    assert.equal((await store.get(i.uuid))?.vm_state, 'active');
    assert.ok(agent.instances.has(i.uuid));
  });

  it('refuses a build beyond capacity with ComputeResourcesUnavailable, before touching the agent', async () => {
    const big = decodeInstance(instancePrimitive({ image_id: 'img', flavor: { vcpus: 1, memory_mb: 700 } }));
    await manager.buildAndRun(ctx, big, 'img');
    assert.equal((await store.get(big.uuid))?.vm_state, 'active');
    const second = decodeInstance(instancePrimitive({ image_id: 'img', flavor: { vcpus: 1, memory_mb: 100 } }));
    await manager.buildAndRun(ctx, second, 'img');
    assert.equal((await store.get(second.uuid))?.vm_state, 'error');
    const fault = await store.latestFault(second.uuid);
    assert.equal(fault?.details, 'ComputeResourcesUnavailable');
    assert.match(fault!.message, /MEMORY_MB: requested 100, free 68 of 768/);
    assert.ok(!agent.instances.has(second.uuid));
    // The failed build claims nothing; deleting the big one frees its memory.
    await manager.terminate(ctx, big.uuid);
    const cap = (await manager.hostCapacity()) as { resources: { MEMORY_MB: { used: number; free: number } } };
    assert.deepEqual([cap.resources.MEMORY_MB.used, cap.resources.MEMORY_MB.free], [0, 768]);
  });

  it('claims under one lock: concurrent builds never over-commit', async () => {
    agent.createDelayMs = 20;
    const builds = Array.from({ length: 6 }, () => decodeInstance(instancePrimitive({ image_id: 'img', flavor: { vcpus: 1, memory_mb: 200 } })));
    await Promise.all(builds.map((b) => manager.buildAndRun(ctx, b, 'img')));
    const states = await Promise.all(builds.map(async (b) => (await store.get(b.uuid))?.vm_state));
    assert.equal(states.filter((s) => s === 'active').length, 3);
    assert.equal(states.filter((s) => s === 'error').length, 3);
  });

  it('checks each claim against the usage as it is now: a delete or a failed build frees its share for the next build at once', async () => {
    const sized = (memory_mb: number) => decodeInstance(instancePrimitive({ image_id: 'img', flavor: { vcpus: 1, memory_mb } }));
    const stateOf = async (uuid: string) => (await store.get(uuid))?.vm_state;
    // 768 MB to hand out. Every claim below is checked right after the change before it.
    const a = sized(700);
    await manager.buildAndRun(ctx, a, 'img');
    const tooBig = sized(100);
    await manager.buildAndRun(ctx, tooBig, 'img');
    assert.equal(await stateOf(tooBig.uuid), 'error');
    await manager.terminate(ctx, a.uuid);
    const b = sized(700);
    await manager.buildAndRun(ctx, b, 'img');
    assert.equal(await stateOf(b.uuid), 'active', 'the deleted instance no longer counts');
    // A build that fails in the agent never ran: its claim goes with it.
    await manager.terminate(ctx, b.uuid);
    agent.failNext('createInstance', agentError('IMAGE_FETCH_FAILED', 'image img is not a docker image'));
    const failed = sized(700);
    await manager.buildAndRun(ctx, failed, 'img');
    assert.equal(await stateOf(failed.uuid), 'error');
    const c = sized(700);
    await manager.buildAndRun(ctx, c, 'img');
    assert.equal(await stateOf(c.uuid), 'active', 'the failed build no longer counts');
    const d = sized(100);
    await manager.buildAndRun(ctx, d, 'img');
    assert.equal(await stateOf(d.uuid), 'error', 'the running one still does');
  });

  it('corrects power-state drift: stopped, vanished, restarted containers', async () => {
    const [a, b] = [newInstance(), newInstance()];
    await manager.buildAndRun(ctx, a, 'img');
    await manager.buildAndRun(ctx, b, 'img');
    agent.instances.get(a.uuid)!.power_state = 'stopped';
    agent.instances.delete(b.uuid);
    pub.published.length = 0;
    const r = await manager.syncPowerStates();
    assert.equal(r.corrected, 2);
    assert.deepEqual([(await store.get(a.uuid))?.vm_state, (await store.get(a.uuid))?.power_state], ['stopped', 4]);
    assert.deepEqual([(await store.get(b.uuid))?.vm_state, (await store.get(b.uuid))?.power_state], ['error', 0]);
    assert.match((await store.latestFault(b.uuid))!.message, /vanished/);
    const update = pub.published.find((p) => p.message.event_type === 'instance.update')!;
    const data = (update.message.payload as { 'nova_object.data': { state_update: { 'nova_object.data': Record<string, unknown> } } })['nova_object.data'];
    assert.equal(data.state_update['nova_object.data'].old_state, 'active');
    agent.instances.get(a.uuid)!.power_state = 'running';
    await manager.syncPowerStates();
    assert.equal((await store.get(a.uuid))?.vm_state, 'active');
    assert.equal((await manager.syncPowerStates()).corrected, 0, 'a second pass finds nothing to correct');
  });

  it('rebuilds on a new image: new container, same instance, rebuild notifications', async () => {
    const i = newInstance();
    await manager.buildAndRun(ctx, i, 'img');
    pub.published.length = 0;
    await manager.imageActions.rebuild(ctx, i.uuid, 'img2');
    const row = await store.get(i.uuid);
    assert.deepEqual([row?.vm_state, row?.image_ref], ['active', 'img2']);
    assert.equal(agent.instances.get(i.uuid)?.spec.image_id, 'img2');
    assert.deepEqual(agent.deletes.at(-1), { uuid: i.uuid, keepVolumes: true }, "nova's rebuild keeps the instance's volumes");
    assert.deepEqual(
      pub.events().filter((e) => e.startsWith('instance.')),
      ['instance.rebuild.start', 'instance.rebuild.end'],
    );
    await manager.powerAction(ctx, i.uuid, 'pause', () => agent.instanceAction(i.uuid, { action: 'pause' }));
    await assert.rejects(manager.imageActions.rebuild(ctx, i.uuid, 'img3'), (e: unknown) => e instanceof RpcFailure && e.className === 'InstanceInvalidState');
  });

  it('rebuilds a stopped instance and leaves it stopped (nova powers it off again)', async () => {
    const i = newInstance();
    await manager.buildAndRun(ctx, i, 'img');
    await manager.powerAction(ctx, i.uuid, 'stop', () => agent.instanceAction(i.uuid, { action: 'stop' }));
    await manager.imageActions.rebuild(ctx, i.uuid, 'img2');
    const row = await store.get(i.uuid);
    assert.deepEqual([row?.vm_state, row?.task_state, row?.power_state, row?.image_ref], ['stopped', null, 4, 'img2']);
    assert.equal(agent.instances.get(i.uuid)?.power_state, 'stopped', 'the new container is not left running');
    assert.equal(agent.instances.get(i.uuid)?.spec.image_id, 'img2');
  });

  it('snapshots: task states through the upload, vm_state kept, snapshot notifications name the image', async () => {
    const i = newInstance();
    await manager.buildAndRun(ctx, i, 'img');
    agent.snapshotPolls = 3;
    pub.published.length = 0;
    await manager.imageActions.snapshot(ctx, i.uuid, 'snap-1');
    const row = await store.get(i.uuid);
    assert.deepEqual([row?.vm_state, row?.task_state], ['active', null]);
    const snapEvents = pub.published.filter((p) => String(p.message.event_type).startsWith('instance.snapshot'));
    assert.deepEqual(
      snapEvents.map((p) => p.message.event_type),
      ['instance.snapshot.start', 'instance.snapshot.end'],
    );
    const data = snapEvents[1]!.message.payload as { 'nova_object.name': string; 'nova_object.data': { snapshot_image_id: string } };
    assert.equal(data['nova_object.name'], 'InstanceActionSnapshotPayload');
    assert.equal(data['nova_object.data'].snapshot_image_id, 'snap-1');
    assert.deepEqual(
      (await store.actions(i.uuid)).map((a) => `${a.action}:${a.result}`),
      ['create:Success', 'createImage:Success'],
    );
  });

  it('a failed snapshot leaves the instance as it was, with a fault and snapshot.error', async () => {
    const i = newInstance();
    await manager.buildAndRun(ctx, i, 'img');
    images.add('snap-2', { status: 'queued' });
    agent.snapshotFails = { code: 'IMAGE_UPLOAD_FAILED', message: 'store refused the upload' };
    await assert.rejects(manager.imageActions.snapshot(ctx, i.uuid, 'snap-2'));
    assert.equal(images.records.has('snap-2'), false, "the queued image is deleted, as nova's delete_image_on_error does");
    const row = await store.get(i.uuid);
    assert.deepEqual([row?.vm_state, row?.task_state], ['active', null]);
    assert.match((await store.latestFault(i.uuid))!.message, /store refused the upload/);
    assert.ok(pub.events().includes('instance.snapshot.error'));
  });

  it('backup rotation keeps the newest `rotation` backups of that type', async () => {
    const i = newInstance();
    await manager.buildAndRun(ctx, i, 'img');
    const props = (n: number, type = 'daily') => ({
      status: 'active' as const,
      owner: i.project_id,
      image_type: 'backup',
      backup_type: type,
      instance_uuid: i.uuid,
      created_at: new Date(Date.UTC(2026, 0, n)).toISOString(),
    });
    for (const n of [1, 2, 3]) images.add(`old-${n}`, props(n));
    images.add('weekly-1', props(1, 'weekly'));
    images.add('new', props(9));
    await manager.imageActions.snapshot(ctx, i.uuid, 'new', { type: 'daily', rotation: 2 });
    assert.deepEqual([...images.records.keys()].sort(), ['new', 'old-3', 'weekly-1']);
  });

  it('backup rotation neither deletes nor counts images of another project that copy the backup properties', async () => {
    const i = newInstance();
    await manager.buildAndRun(ctx, i, 'img');
    const props = (n: number, owner: string | null = i.project_id) => ({
      status: 'active' as const,
      owner,
      image_type: 'backup',
      backup_type: 'daily',
      instance_uuid: i.uuid,
      created_at: new Date(Date.UTC(2026, 0, n)).toISOString(),
    });
    images.add('own-1', props(1));
    images.add('own-2', props(2));
    // Another tenant's images, public, with the instance's uuid and nova's backup properties:
    // the older one would be rotated away, the newer ones would push out the real backups.
    images.add('crafted-old', { ...props(0, 'mallory'), visibility: 'public' });
    images.add('crafted-new-1', { ...props(20, 'mallory'), visibility: 'public' });
    images.add('crafted-new-2', { ...props(21, null), visibility: 'public' });
    // The owner's own image with backup_type but not image_type backup is no backup either.
    images.add('own-snapshot', { ...props(0), image_type: 'snapshot' });
    images.add('new', props(9));
    await manager.imageActions.snapshot(ctx, i.uuid, 'new', { type: 'daily', rotation: 2 });
    assert.deepEqual([...images.records.keys()].sort(), ['crafted-new-1', 'crafted-new-2', 'crafted-old', 'new', 'own-2', 'own-snapshot']);
  });

  it("has a transition table with nova's guards", () => {
    assert.ok(canStart('stop', 'active', null));
    assert.ok(!canStart('stop', 'active', 'rebooting'));
    assert.ok(!canStart('start', 'active', null));
    assert.ok(canStart('delete', 'building', 'spawning'));
    assert.ok(!canStart('delete', 'deleted', null));
    assert.ok(canStart('reboot_hard', 'error', null));
  });
});
