import { strict as assert } from 'node:assert';
import type { Driver } from '../../../driver/service.js';
import { createImageClient } from '../../../glance-bridge/client/http.js';
import type { ImageService } from '../../../glance-bridge/client/types.js';
import {
  buildAndRunInstance,
  imageDict,
  instancePrimitive,
  shelveInstance,
  shelveOffloadInstance,
  unshelveInstance,
} from '../../../tools/lib/nova-requests.js';
import { containersOf, startStack, type Stack } from '../../../tools/lib/stack.js';
import { AmqpPeer, type Collector } from '../../support/amqp.js';
import { execIn } from '../agent/docker-helpers.js';

/**
 * Shelve, offload and unshelve on real services (standalone mode): RabbitMQ, the driver, the
 * agent, the image service and dockerd. What a tenant wrote into the container survives the trip
 * through the image store; the node's claim is released while the instance is offloaded.
 */
describe('shelve and unshelve end to end: a real container through the image store', function () {
  this.timeout(180_000);
  let stack: Stack;
  let driver: Driver;
  let peer: AmqpPeer;
  let events: Collector;
  let images: ImageService;
  const flavor = { vcpus: 1, memory_mb: 64, name: 'it.small' };

  before(async () => {
    stack = await startStack();
    driver = stack.driver;
    peer = await AmqpPeer.open();
    events = await peer.listen(stack.exchange, ['versioned_notifications.info', 'versioned_notifications.error']);
    images = createImageClient({ url: stack.imagesUrl, roles: ['admin'] });
  });
  after(async () => {
    await peer?.close();
    await stack?.stop();
  });

  const to = () => `compute.${stack.host}`;
  const ofInstance = (uuid: string, type: string) => (c: { message: Record<string, unknown> }) =>
    c.message.event_type === type && (c.message.payload as { 'nova_object.data': { uuid: string } })['nova_object.data'].uuid === uuid;
  const ended = async (uuid: string, event: string) => {
    await events.waitFor(ofInstance(uuid, `instance.${event}.end`), 120_000, `instance.${event}.end`).catch(async (err: unknown) => {
      throw new Error(`${(err as Error).message}; fault: ${(await driver.store.latestFault(uuid))?.message ?? 'none'}`);
    });
  };
  /** Waits until an action (nova sends no `.error` notification for an unshelve) has a result and the task is cleared. */
  const settled = async (uuid: string, action: string) => {
    for (let i = 0; i < 240; i++) {
      const r = await driver.store.get(uuid);
      const last = (await driver.store.actions(uuid)).at(-1);
      if (r?.task_state === null && last?.action === action && last.result) return r;
      await new Promise((res) => setTimeout(res, 250));
    }
    assert.fail(`instance ${uuid} did not settle`);
  };
  const containerId = async (uuid: string) => {
    const [c] = await containersOf(uuid);
    assert.ok(c, 'the container exists');
    return c.Id;
  };
  const boot = async () => {
    const image = await stack.testImage();
    const inst = instancePrimitive({ image_id: image.id, flavor });
    const uuid = (inst['nova_object.data'] as { uuid: string }).uuid;
    stack.track(uuid);
    peer.cast(stack.exchange, to(), buildAndRunInstance(inst, imageDict({ id: image.id })));
    await ended(uuid, 'create');
    const now = (vm_state = 'active', task_state: string | null = null) =>
      instancePrimitive({ uuid, image_id: image.id, flavor, host: stack.host, vm_state, task_state });
    return { uuid, now, image };
  };
  /** nova-api's `<name>-shelved` image, then shelve_instance; the node offloads at once ([compute] shelved_offload_time 0). */
  const shelve = async (uuid: string, now: (vm?: string, task?: string | null) => Record<string, unknown>) => {
    const snap = await images.createImage({
      name: `${uuid}-shelved`,
      container_format: 'docker',
      disk_format: 'raw',
      image_type: 'snapshot',
      instance_uuid: uuid,
    });
    peer.cast(stack.exchange, to(), shelveInstance(now('active', 'shelving'), snap.id));
    await ended(uuid, 'shelve_offload');
    return snap.id;
  };

  it("shelve removes the container and releases the claim; unshelve boots the snapshot with the tenant's file and deletes the snapshot", async () => {
    const { uuid, now } = await boot();
    await execIn(await containerId(uuid), ['sh', '-c', `echo kept-${uuid} > /root/tenant-file`]);
    const claimed = await driver.manager.usage();
    assert.ok(claimed.MEMORY_MB >= 64);

    const snap = await shelve(uuid, now);
    let row = await driver.store.get(uuid);
    assert.deepEqual([row?.vm_state, row?.task_state], ['shelved_offloaded', null]);
    assert.deepEqual(await containersOf(uuid), [], 'no container is left');
    assert.equal((await driver.manager.usage()).MEMORY_MB, claimed.MEMORY_MB - 64, 'the claim is released');
    assert.equal((await images.getImage(snap))?.status, 'active', 'the snapshot is in the image store');

    peer.cast(stack.exchange, to(), unshelveInstance(now('shelved_offloaded', 'unshelving'), imageDict({ id: snap }), stack.host));
    await ended(uuid, 'unshelve');
    row = await driver.store.get(uuid);
    assert.deepEqual([row?.vm_state, row?.task_state, row?.power_state], ['active', null, 1]);
    assert.equal((await execIn(await containerId(uuid), ['cat', '/root/tenant-file'])).trim(), `kept-${uuid}`);
    assert.equal((await driver.manager.usage()).MEMORY_MB, claimed.MEMORY_MB, 'claimed again');
    assert.equal(await images.getImage(snap), null, 'the snapshot is deleted after the unshelve');
  });

  it('a failed unshelve leaves a clear fault, no container and the snapshot intact; the next one succeeds', async () => {
    const { uuid, now } = await boot();
    const snap = await shelve(uuid, now);
    const missing = '00000000-0000-4000-8000-00000000dead';
    peer.cast(stack.exchange, to(), unshelveInstance(now('shelved_offloaded', 'unshelving'), imageDict({ id: missing }), stack.host));
    const row = await settled(uuid, 'unshelve');
    assert.equal(row.vm_state, 'shelved_offloaded');
    const fault = await driver.store.latestFault(uuid);
    assert.equal(fault?.details, 'ImageNotFound');
    assert.match(fault!.message, new RegExp(missing));
    assert.deepEqual(await containersOf(uuid), []);
    assert.equal((await images.getImage(snap))?.status, 'active', 'the snapshot is intact');

    peer.cast(stack.exchange, to(), unshelveInstance(now('shelved_offloaded', 'unshelving'), imageDict({ id: snap }), stack.host));
    await ended(uuid, 'unshelve');
    assert.equal((await driver.store.get(uuid))?.vm_state, 'active');
  });

  it('refuses a shelve offload or unshelve of an active instance with InstanceInvalidState, and the container keeps running', async () => {
    const { uuid, now } = await boot();
    const id = await containerId(uuid);
    for (const msg of [shelveOffloadInstance(now()), unshelveInstance(now(), null, stack.host)]) {
      const { reply } = await peer.call(stack.exchange, to(), msg, 30_000);
      assert.match(String(reply.failure), /InstanceInvalidState/);
    }
    const [c] = await containersOf(uuid);
    assert.equal(c?.Id, id);
    assert.equal(c?.State, 'running');
    assert.deepEqual([(await driver.store.get(uuid))?.vm_state, (await driver.store.get(uuid))?.task_state], ['active', null]);
  });
});
