import { strict as assert } from 'node:assert';
import { agentError } from '../../../agent/client/errors.js';
import { silentLogger } from '../../../common/log.js';
import { ComputeManager } from '../../../driver/compute/manager.js';
import { InstanceStore } from '../../../driver/compute/store.js';
import { computeEndpoint } from '../../../driver/compute/endpoint.js';
import { openDriverDatabase } from '../../../driver/db/index.js';
import type { Endpoint } from '../../../driver/rpc/dispatcher.js';
import { RpcFailure } from '../../../driver/rpc/failure.js';
import {
  buildAndRunInstance,
  flavorPrimitive,
  imageDict,
  instancePrimitive,
  migrationPrimitive,
  prepResize,
  resizeDecision,
} from '../../../tools/lib/nova-requests.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';
import { FakePublisher } from '../../fakes/publisher.js';
import { TEST_RESOURCES as resources, testNotifier, deliver } from '../../support/driver-fixtures.js';

/** Runs a method as the dispatcher does: the endpoint's deserialize step, then the handler. */
const invoke = (ep: Endpoint, msg: Record<string, unknown>): Promise<unknown> => deliver(ep, msg);

describe('same-host resize (fake agent, in-memory database)', () => {
  let agent: FakeAgentClient;
  let pub: FakePublisher;
  let store: InstanceStore;
  let manager: ComputeManager;
  let ep: Endpoint;
  const small = { vcpus: 1, memory_mb: 128, name: 'small' };
  const big = { vcpus: 2, memory_mb: 256, name: 'big' };

  beforeEach(async () => {
    agent = new FakeAgentClient();
    pub = new FakePublisher();
    store = new InstanceStore(await openDriverDatabase('sqlite://'));
    const notifier = testNotifier(pub, 'n1');
    manager = new ComputeManager({ host: 'n1', node: 'n1', store, agent, notifier, resources, log: silentLogger() });
    ep = computeEndpoint(manager, agent);
  });
  afterEach(() => store.close());

  /** An active instance of the small flavor, and the primitive a control plane would send for it now. */
  const boot = async () => {
    const inst = instancePrimitive({ image_id: 'img', flavor: small });
    const uuid = (inst['nova_object.data'] as { uuid: string }).uuid;
    await invoke(ep, buildAndRunInstance(inst, imageDict({ id: 'img' })));
    const now = () => instancePrimitive({ uuid, image_id: 'img', flavor: small, host: 'n1', vm_state: 'active', task_state: null });
    return { uuid, now };
  };
  const resize = async (uuid: string, inst: Record<string, unknown>, flavor = big) => {
    const migration = migrationPrimitive({ instance_uuid: uuid, host: 'n1' });
    await invoke(ep, prepResize(inst, flavorPrimitive(flavor), migration, 'n1'));
    return migration;
  };
  const row = async (uuid: string) => (await store.get(uuid))!;

  it('resizes in place: resized with the new flavor on the container, both flavors claimed until confirm', async () => {
    const { uuid, now } = await boot();
    pub.published.length = 0;
    const migration = await resize(uuid, now());
    const r = await row(uuid);
    assert.equal(r.vm_state, 'resized');
    assert.equal(r.task_state, null);
    assert.equal(r.power_state, 1);
    assert.equal(JSON.parse(r.flavor).memory_mb, 256);
    assert.equal(agent.instances.get(uuid)!.spec.flavor.memory_mb, 256);
    assert.equal(JSON.parse(r.spec).flavor.vcpus, 2);
    assert.deepEqual(pub.events(), [
      'instance.resize_prep.start',
      'instance.resize_prep.end',
      'instance.resize.start',
      'instance.resize.end',
      'instance.resize_finish.start',
      'instance.resize_finish.end',
    ]);
    const m = (await store.latestMigration(uuid))!;
    assert.equal(m.status, 'finished');
    assert.equal(m.old_vm_state, 'active');
    assert.deepEqual(await manager.usage(), { VCPU: 3, MEMORY_MB: 384, DISK_GB: 2 });
    assert.equal(agent.calls.filter((c) => c === 'createInstance').length, 1, 'no new container');

    await invoke(ep, resizeDecision('confirm_resize', now(), migration));
    assert.equal((await row(uuid)).vm_state, 'active');
    assert.equal((await store.latestMigration(uuid))!.status, 'confirmed');
    assert.deepEqual(await manager.usage(), { VCPU: 2, MEMORY_MB: 256, DISK_GB: 1 });
    assert.deepEqual(
      (await store.actions(uuid)).map((a) => `${a.action}:${a.result}`),
      ['create:Success', 'resize_prep:Success', 'resize:Success', 'resize_finish:Success', 'resize_confirm:Success'],
    );
    // A redelivered confirm finds it confirmed.
    await invoke(ep, resizeDecision('confirm_resize', now(), migration));
    assert.equal((await store.actions(uuid)).length, 5);
  });

  it('reverts: the old limits back on the container, one flavor claimed, a repeat changes nothing', async () => {
    const { uuid, now } = await boot();
    const migration = await resize(uuid, now());
    await invoke(ep, resizeDecision('revert_resize', now(), migration));
    const r = await row(uuid);
    assert.equal(r.vm_state, 'active');
    assert.equal(JSON.parse(r.flavor).memory_mb, 128);
    assert.equal(agent.instances.get(uuid)!.spec.flavor.memory_mb, 128);
    assert.equal((await store.latestMigration(uuid))!.status, 'reverted');
    assert.deepEqual(await manager.usage(), { VCPU: 1, MEMORY_MB: 128, DISK_GB: 1 });
    await invoke(ep, { method: 'finish_revert_resize', args: { instance: now(), migration, request_spec: null } });
    assert.equal((await store.actions(uuid)).filter((a) => a.action === 'resize_revert').length, 1);
  });

  it('keeps a stopped instance stopped: resized while powered off, stopped again after confirm', async () => {
    const { uuid } = await boot();
    await manager.powerAction({}, uuid, 'stop', () => agent.instanceAction(uuid, { action: 'stop' }));
    const inst = instancePrimitive({ uuid, image_id: 'img', flavor: small, host: 'n1', vm_state: 'stopped', task_state: null });
    const migration = await resize(uuid, inst);
    assert.equal((await row(uuid)).vm_state, 'resized');
    assert.equal((await row(uuid)).power_state, 4);
    assert.equal(agent.instances.get(uuid)!.power_state, 'stopped');
    await invoke(ep, resizeDecision('confirm_resize', inst, migration));
    assert.equal((await row(uuid)).vm_state, 'stopped');
  });

  it('refuses a flavor the host cannot also hold (move claim): the instance stays active, with a fault and no migration', async () => {
    const { uuid, now } = await boot();
    await assert.rejects(
      resize(uuid, now(), { vcpus: 1, memory_mb: 700, name: 'huge' }),
      (e: unknown) => e instanceof RpcFailure && e.className === 'ComputeResourcesUnavailable',
    );
    const r = await row(uuid);
    assert.equal(r.vm_state, 'active');
    assert.equal(r.task_state, null);
    assert.equal(await store.latestMigration(uuid), null);
    assert.equal((await store.latestFault(uuid))?.details, 'ComputeResourcesUnavailable');
    assert.equal(agent.instances.get(uuid)!.spec.flavor.memory_mb, 128);
  });

  it('refuses a move off this host and a cold migration to itself, as nova does', async () => {
    const { uuid, now } = await boot();
    const elsewhere = instancePrimitive({ uuid, image_id: 'img', flavor: small, host: 'other', vm_state: 'active', task_state: null });
    await assert.rejects(resize(uuid, elsewhere), (e: unknown) => e instanceof RpcFailure && e.className === 'MigrationError');
    const migration = migrationPrimitive({ instance_uuid: uuid, host: 'n1', migration_type: 'migration' });
    await assert.rejects(
      invoke(ep, prepResize(now(), flavorPrimitive(small), migration, 'n1')),
      (e: unknown) => e instanceof RpcFailure && e.className === 'UnableToMigrateToSelf',
    );
    assert.equal((await row(uuid)).vm_state, 'active');
  });

  it('a limit change the engine refuses leaves the instance in error and the migration failed', async () => {
    const { uuid, now } = await boot();
    agent.failNext('resizeInstance', agentError('INVALID_INPUT', 'cannot move between CPU bounds', { field: 'flavor' }));
    await assert.rejects(resize(uuid, now()));
    assert.equal((await row(uuid)).vm_state, 'error');
    assert.equal((await store.latestMigration(uuid))!.status, 'error');
    assert.deepEqual(await manager.usage(), { VCPU: 1, MEMORY_MB: 128, DISK_GB: 1 });
  });

  it('refuses confirm and revert of an instance that is not resized, and a resize of a paused one', async () => {
    const { uuid, now } = await boot();
    const migration = migrationPrimitive({ instance_uuid: uuid, host: 'n1' });
    await assert.rejects(
      invoke(ep, resizeDecision('revert_resize', now(), migration)),
      (e: unknown) => e instanceof RpcFailure && e.className === 'MigrationNotFound',
    );
    await invoke(ep, resizeDecision('confirm_resize', now(), migration));
    assert.equal((await row(uuid)).vm_state, 'active');
    await manager.powerAction({}, uuid, 'pause', () => agent.instanceAction(uuid, { action: 'pause' }));
    await assert.rejects(resize(uuid, now()), (e: unknown) => e instanceof RpcFailure && e.className === 'InstanceInvalidState');
  });

  it('trigger_crash_dump signals a running guest and changes no state; a stopped one is InstanceNotRunning', async () => {
    const { uuid, now } = await boot();
    pub.published.length = 0;
    await invoke(ep, { method: 'trigger_crash_dump', args: { instance: now() } });
    assert.deepEqual(pub.events(), ['instance.trigger_crash_dump.start', 'instance.trigger_crash_dump.end']);
    assert.deepEqual([(await row(uuid)).vm_state, (await row(uuid)).task_state], ['active', null]);
    await manager.powerAction({}, uuid, 'stop', () => agent.instanceAction(uuid, { action: 'stop' }));
    await assert.rejects(
      invoke(ep, { method: 'trigger_crash_dump', args: { instance: now() } }),
      (e: unknown) => e instanceof RpcFailure && e.className === 'InstanceInvalidState',
    );
    await manager.powerAction({}, uuid, 'start', () => agent.instanceAction(uuid, { action: 'start' }));
    await manager.powerAction({}, uuid, 'pause', () => agent.instanceAction(uuid, { action: 'pause' }));
    await assert.rejects(
      invoke(ep, { method: 'trigger_crash_dump', args: { instance: now() } }),
      (e: unknown) => e instanceof RpcFailure && e.className === 'InstanceNotRunning',
    );
    assert.equal((await store.latestFault(uuid))?.details, 'InstanceNotRunning');
    assert.equal((await row(uuid)).vm_state, 'paused');
  });

  it('soft-deletes (container stopped and kept, claim kept) and restores; refuses a restore of an active one', async () => {
    const { uuid, now } = await boot();
    pub.published.length = 0;
    await invoke(ep, { method: 'soft_delete_instance', args: { instance: now() } });
    let r = await row(uuid);
    assert.deepEqual([r.vm_state, r.task_state, r.power_state], ['soft-delete', null, 4]);
    assert.equal(agent.instances.get(uuid)!.power_state, 'stopped');
    assert.deepEqual(await manager.usage(), { VCPU: 1, MEMORY_MB: 128, DISK_GB: 1 });
    await invoke(ep, { method: 'restore_instance', args: { instance: now() } });
    r = await row(uuid);
    assert.deepEqual([r.vm_state, r.task_state, r.power_state], ['active', null, 1]);
    assert.equal(agent.instances.get(uuid)!.power_state, 'running');
    assert.deepEqual(pub.events(), ['instance.soft_delete.start', 'instance.soft_delete.end', 'instance.restore.start', 'instance.restore.end']);
    await assert.rejects(
      invoke(ep, { method: 'restore_instance', args: { instance: now() } }),
      (e: unknown) => e instanceof RpcFailure && e.className === 'InstanceInvalidState',
    );
  });

  it('refuses live migration with MigrationPreCheckError', async () => {
    const { now } = await boot();
    for (const method of ['check_can_live_migrate_destination', 'live_migration']) {
      await assert.rejects(
        invoke(ep, { method, args: { instance: now(), destination: 'n2', block_migration: false, disk_over_commit: false, migration: null, limits: null } }),
        (e: unknown) => e instanceof RpcFailure && e.className === 'MigrationPreCheckError' && /CRIU/.test(e.message),
      );
    }
  });
});
