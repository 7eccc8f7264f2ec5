import { strict as assert } from 'node:assert';
import { requestJson } from '../../../common/http-client.js';
import type { Driver } from '../../../driver/service.js';
import {
  buildAndRunInstance,
  flavorPrimitive,
  imageDict,
  instancePrimitive,
  migrationPrimitive,
  prepResize,
  resizeDecision,
} from '../../../tools/lib/nova-requests.js';
import { containersOf, DOCKER, startStack, type Stack } from '../../../tools/lib/stack.js';
import { AmqpPeer, type Collector } from '../../support/amqp.js';

interface HostConfig {
  Memory: number;
  MemorySwap: number;
  NanoCpus: number;
  CpuShares: number;
  PidsLimit: number;
}

/**
 * Same-host resize on real services: RabbitMQ, the driver, the agent and dockerd. The container's
 * cgroup limits change in place (the same container, never restarted) and come back on revert.
 */
describe('same-host resize end to end: prep_resize, confirm and revert on a real container', function () {
  this.timeout(120_000);
  let stack: Stack;
  let driver: Driver;
  let peer: AmqpPeer;
  let events: Collector;
  const small = { vcpus: 1, memory_mb: 64, name: 'it.small' };
  const big = { vcpus: 2, memory_mb: 128, swap: 32, name: 'it.big', extra_specs: { 'quota:pids_limit': '256' } };

  before(async () => {
    stack = await startStack();
    driver = stack.driver;
    peer = await AmqpPeer.open();
    events = await peer.listen(stack.exchange, ['versioned_notifications.info', 'versioned_notifications.error']);
  });
  after(async () => {
    await peer?.close();
    await stack?.stop();
  });

  const to = () => `compute.${stack.host}`;
  /** Waits for instance.<event>.end (or .error, which fails) of one instance. */
  const ended = async (uuid: string, event: string) => {
    const got = await events.waitFor(
      (c) =>
        (c.message.event_type === `instance.${event}.end` || c.message.event_type === `instance.${event}.error`) &&
        (c.message.payload as { 'nova_object.data': { uuid: string } })['nova_object.data'].uuid === uuid,
      60_000,
      `instance.${event}.end`,
    );
    assert.equal(got.message.event_type, `instance.${event}.end`, `fault: ${(await driver.store.latestFault(uuid))?.message}`);
  };
  const container = async (uuid: string) => {
    const [c] = await containersOf(uuid);
    assert.ok(c, 'the container exists');
    return (
      await requestJson<{ Id: string; State: { Status: string; StartedAt: string }; HostConfig: HostConfig }>(DOCKER, {
        path: `/v1.41/containers/${c.Id}/json`,
      })
    ).body;
  };
  const boot = async () => {
    const image = await stack.testImage();
    const inst = instancePrimitive({ image_id: image.id, flavor: small });
    const uuid = (inst['nova_object.data'] as { uuid: string }).uuid;
    stack.track(uuid);
    peer.cast(stack.exchange, to(), buildAndRunInstance(inst, imageDict({ id: image.id })));
    await ended(uuid, 'create');
    const now = (vm_state = 'active') => instancePrimitive({ uuid, image_id: image.id, flavor: small, host: stack.host, vm_state, task_state: null });
    return { uuid, now };
  };
  const resize = async (uuid: string, inst: Record<string, unknown>) => {
    const migration = migrationPrimitive({ instance_uuid: uuid, host: stack.host });
    peer.cast(stack.exchange, to(), prepResize(inst, flavorPrimitive(big), migration, stack.host));
    await ended(uuid, 'resize_finish');
    return migration;
  };

  it('changes the limits of the running container in place, and confirm keeps them', async () => {
    const { uuid, now } = await boot();
    const before = await container(uuid);
    assert.equal(before.HostConfig.Memory, 64 * 1024 * 1024);
    const migration = await resize(uuid, now());
    const after = await container(uuid);
    assert.equal(after.Id, before.Id, 'the same container');
    assert.equal(after.State.Status, 'running');
    assert.equal(after.State.StartedAt, before.State.StartedAt, 'not restarted');
    assert.deepEqual(
      [after.HostConfig.Memory, after.HostConfig.MemorySwap, after.HostConfig.NanoCpus, after.HostConfig.CpuShares, after.HostConfig.PidsLimit],
      [128 * 1024 * 1024, 160 * 1024 * 1024, 2e9, 2048, 256],
    );
    assert.equal((await driver.store.get(uuid))?.vm_state, 'resized');
    peer.cast(stack.exchange, to(), resizeDecision('confirm_resize', now('resized'), migration));
    await ended(uuid, 'resize_confirm');
    assert.equal((await driver.store.get(uuid))?.vm_state, 'active');
    assert.equal((await container(uuid)).HostConfig.Memory, 128 * 1024 * 1024);
  });

  it('reverts a stopped instance: the old limits back, still stopped', async () => {
    const { uuid, now } = await boot();
    peer.cast(stack.exchange, to(), { method: 'stop_instance', version: '6.0', args: { instance: now(), clean_shutdown: true } });
    await ended(uuid, 'power_off');
    const migration = await resize(uuid, now('stopped'));
    assert.equal((await container(uuid)).HostConfig.Memory, 128 * 1024 * 1024);
    assert.equal((await container(uuid)).State.Status, 'exited');
    peer.cast(stack.exchange, to(), resizeDecision('revert_resize', now('resized'), migration));
    await ended(uuid, 'resize_revert');
    const c = await container(uuid);
    assert.deepEqual([c.HostConfig.Memory, c.HostConfig.NanoCpus, c.HostConfig.PidsLimit], [64 * 1024 * 1024, 1e9, 1024]);
    assert.equal(c.State.Status, 'exited');
    const row = await driver.store.get(uuid);
    assert.equal(row?.vm_state, 'stopped');
    assert.equal(JSON.parse(row!.flavor).memory_mb, 64);
  });
});
