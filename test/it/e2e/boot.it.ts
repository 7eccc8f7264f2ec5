import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import { createAgentClient } from '../../../agent/client/http.js';
import { requestJson } from '../../../common/http-client.js';
import { encodeEnvelope } from '../../../driver/rpc/envelope.js';
import type { Driver } from '../../../driver/service.js';
import { AmqpPeer } from '../../support/amqp.js';
import { fixture } from '../../support/fixtures.js';
import { containersOf, DOCKER, startStack, type Stack } from '../../../tools/lib/stack.js';
import { waitUntil } from '../../support/waits.js';

/**
 * The thin slice end to end on real services: RabbitMQ, dockerd and the registry. The image is
 * imported from the local registry into the image store, the captured build cast (re-addressed
 * to this node, instance and image) boots a real container, terminate removes it.
 */
describe('boot end to end: RabbitMQ → driver → agent → dockerd, image from the registry via the store', function () {
  this.timeout(120_000);
  let stack: Stack;
  let driver: Driver;
  let host: string;
  let exchange: string;
  let peer: AmqpPeer;

  before(async () => {
    stack = await startStack();
    ({ driver, host, exchange } = stack);
    peer = await AmqpPeer.open();
  });

  after(async () => {
    await peer?.close();
    await stack?.stop();
  });

  /** The captured conductor cast, re-addressed: new instance uuid, our image, smaller flavor. */
  function buildCastFor(uuid: string, imageId: string): Buffer {
    const msg = structuredClone(fixture('oslo/compute-build_and_run_instance-cast.json').message);
    const args = msg.args as Record<string, Record<string, Record<string, unknown>>>;
    const inst = args.instance!['nova_object.data']!;
    inst.uuid = uuid;
    inst.image_ref = imageId;
    inst.memory_mb = 96;
    const flavor = (inst.flavor as Record<string, Record<string, unknown>>)['nova_object.data']!;
    flavor.memory_mb = 96;
    (inst.info_cache as Record<string, Record<string, unknown>>)['nova_object.data']!.network_info = '[]';
    (args.image as Record<string, unknown>).id = imageId;
    msg._unique_id = randomUUID().replace(/-/g, '');
    return encodeEnvelope(msg);
  }

  it('imports the image, boots a real container from the build cast, and terminates it', async () => {
    const image = await stack.testImage();
    assert.equal(image.status, 'active');
    assert.match(String(image.docker_image_id), /^sha256:[0-9a-f]{64}$/);

    const uuid = randomUUID();
    stack.track(uuid);
    const events = await peer.listen(exchange, ['versioned_notifications.info', 'versioned_notifications.error']);
    peer.publishRaw(exchange, `compute.${host}`, buildCastFor(uuid, image.id));

    await events.waitFor(
      (c) => c.message.event_type === 'instance.create.end' || c.message.event_type === 'instance.create.error',
      60_000,
      'instance.create.end',
    );
    const row = await driver.store.get(uuid);
    assert.equal(row?.vm_state, 'active', `fault: ${(await driver.store.latestFault(uuid))?.message}`);
    const [container] = await containersOf(uuid);
    assert.ok(container, 'a container labelled with the instance uuid exists');
    assert.equal(container.State, 'running');
    const inspect = (await requestJson<{ HostConfig: { Memory: number; Privileged: boolean } }>(DOCKER, { path: `/v1.41/containers/${container.Id}/json` }))
      .body;
    assert.equal(inspect.HostConfig.Memory, 96 * 1024 * 1024);
    assert.equal(inspect.HostConfig.Privileged, false);
    const console = await waitUntil(
      async () => {
        const out = await driver.manager.require(uuid).then(() => createAgentClient({ url: stack.agentUrl, token: stack.agentToken }).consoleLog(uuid));
        return out.includes('berth-guest: booted') ? out : undefined;
      },
      10_000,
      'boot banner on the console',
    );
    assert.match(console, /booted/);

    const terminate = structuredClone(fixture('oslo/compute-terminate_instance-cast.json').message);
    (terminate.args as Record<string, Record<string, Record<string, unknown>>>).instance!['nova_object.data']!.uuid = uuid;
    terminate._unique_id = randomUUID().replace(/-/g, '');
    peer.publishRaw(exchange, `compute.${host}`, encodeEnvelope(terminate));
    await waitUntil(async () => (await driver.store.get(uuid))?.vm_state === 'deleted', 30_000, 'instance deleted');
    assert.deepEqual(await containersOf(uuid), []);
  });

  it('fails a build whose image does not exist to error with a reason, and leaves no container', async () => {
    const uuid = randomUUID();
    stack.track(uuid);
    peer.publishRaw(exchange, `compute.${host}`, buildCastFor(uuid, randomUUID()));
    await waitUntil(async () => (await driver.store.get(uuid))?.vm_state === 'error', 30_000, 'instance error');
    const fault = await driver.store.latestFault(uuid);
    assert.equal(fault?.details, 'ImageNotFound');
    assert.deepEqual(await containersOf(uuid), []);
  });
});
