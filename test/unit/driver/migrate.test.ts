import { strict as assert } from 'node:assert';
import { agentError } from '../../../agent/client/errors.js';
import { silentLogger } from '../../../common/log.js';
import { berthEndpoint } from '../../../driver/compute/berth-endpoint.js';
import { computeEndpoint } from '../../../driver/compute/endpoint.js';
import { ComputeManager } from '../../../driver/compute/manager.js';
import { carriedOf } from '../../../driver/compute/migrate-carry.js';
import { InstanceStore } from '../../../driver/compute/store.js';
import { openDriverDatabase } from '../../../driver/db/index.js';
import type { Endpoint } from '../../../driver/rpc/dispatcher.js';
import {
  buildAndRunInstance,
  flavorPrimitive,
  imageDict,
  instancePrimitive,
  migrationPrimitive,
  prepResize,
  resizeDecision,
} from '../../../tools/lib/nova-requests.js';
import { InProcessCasts } from '../../support/in-process-casts.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';
import { FakeImageService } from '../../fakes/glance-images.js';
import { FakePublisher } from '../../fakes/publisher.js';
import { TEST_RESOURCES as resources, testNotifier, deliver, TEST_CTX } from '../../support/driver-fixtures.js';

const CTX = TEST_CTX;

const invoke = (ep: Endpoint, msg: Record<string, unknown>): Promise<unknown> => deliver(ep, msg, CTX);

interface Node {
  host: string;
  agent: FakeAgentClient;
  pub: FakePublisher;
  manager: ComputeManager;
  compute: Endpoint;
  berth: Endpoint;
}

/**
 * Two compute nodes sharing one database (as nodes sharing PostgreSQL do), each with its own
 * agent; casts between them are delivered in process, in order, and awaited by `settle`.
 */
describe('resize and cold migration between two nodes (fake agents, one in-memory database)', () => {
  let store: InstanceStore;
  let images: FakeImageService;
  let nodes: Record<string, Node>;
  let casts: InProcessCasts;
  const small = { vcpus: 1, memory_mb: 128, name: 'small' };
  const big = { vcpus: 2, memory_mb: 256, name: 'big' };

  beforeEach(async () => {
    store = new InstanceStore(await openDriverDatabase('sqlite://'));
    images = new FakeImageService();
    casts = new InProcessCasts((host, ns) => (ns === 'berth' ? nodes[host]!.berth : nodes[host]!.compute), CTX);
    nodes = {};
    for (const host of ['n1', 'n2']) {
      const agent = new FakeAgentClient();
      agent.snapshotPolls = 0;
      const pub = new FakePublisher();
      const notifier = testNotifier(pub, host);
      const manager = new ComputeManager({ host, node: host, store, agent, notifier, resources, images, peers: casts.peers(host), log: silentLogger() });
      nodes[host] = { host, agent, pub, manager, compute: computeEndpoint(manager, agent), berth: berthEndpoint(host, store, manager) };
    }
  });
  afterEach(() => store.close());

  const boot = async () => {
    const inst = instancePrimitive({ image_id: 'img', flavor: small });
    const uuid = (inst['nova_object.data'] as { uuid: string }).uuid;
    await invoke(nodes.n1!.compute, buildAndRunInstance(inst, imageDict({ id: 'img' })));
    const on = (host: string, vm_state = 'active') => instancePrimitive({ uuid, image_id: 'img', flavor: small, host, vm_state, task_state: null });
    return { uuid, on };
  };
  /** What the conductor sends: prep_resize to the destination, with the source's instance. */
  const move = async (uuid: string, inst: Record<string, unknown>, flavor = big, type: 'resize' | 'migration' = 'resize') => {
    const migration = migrationPrimitive({ instance_uuid: uuid, host: 'n1', dest: 'n2', migration_type: type });
    await invoke(nodes.n2!.compute, prepResize(inst, flavorPrimitive(flavor), migration, 'n2'));
    await casts.settle();
    return migration;
  };
  const row = async (uuid: string) => (await store.get(uuid))!;

  it('resizes to another node: the source stopped and snapshotted without its base layers, the destination boots that image resized', async () => {
    const { uuid, on } = await boot();
    await move(uuid, on('n1'));
    assert.deepEqual(casts.failures, []);
    assert.deepEqual(casts.log, ['n2->n1:resize_instance', 'n1->n2:finish_resize', 'n2->n1:resize_finished']);
    const r = await row(uuid);
    assert.equal(r.host, 'n2');
    assert.equal(r.vm_state, 'resized');
    assert.equal(JSON.parse(r.flavor).memory_mb, 256);
    const m = (await store.latestMigration(uuid))!;
    assert.equal(m.status, 'finished');
    assert.equal(m.source_compute, 'n1');
    assert.equal(m.dest_compute, 'n2');
    // The destination checked it can host the image before anything was sent.
    assert.deepEqual(nodes.n2!.agent.fetched, ['img']);
    // The source: stopped, then a snapshot that leaves the base image's layers out.
    assert.equal(nodes.n1!.agent.instances.get(uuid)!.power_state, 'stopped');
    assert.deepEqual([...nodes.n1!.agent.snapshotOptions.values()], [{ omit_base_layers: true }]);
    const carrier = images.records.get(m.image_id)!;
    assert.equal(carrier.owner, r.project_id);
    assert.equal(carrier.visibility, 'private');
    // The destination: a container from that image, with the new flavor.
    const created = nodes.n2!.agent.instances.get(uuid)!;
    assert.equal(created.spec.image_id, m.image_id);
    assert.equal(created.spec.flavor.memory_mb, 256);
    assert.equal(created.power_state, 'running');
    // Both ends hold their flavor until the move is decided.
    assert.deepEqual(await nodes.n1!.manager.usage(), { VCPU: 1, MEMORY_MB: 128, DISK_GB: 1 });
    assert.deepEqual(await nodes.n2!.manager.usage(), { VCPU: 2, MEMORY_MB: 256, DISK_GB: 1 });
    assert.deepEqual(nodes.n1!.pub.events(), [
      'instance.create.start',
      'instance.create.end',
      'instance.resize_prep.start',
      'instance.resize_prep.end',
      'instance.resize.start',
      'instance.resize.end',
    ]);
    assert.deepEqual(nodes.n2!.pub.events(), ['instance.resize_finish.start', 'instance.resize_finish.end']);
  });

  it('confirms on the source: its container and claim go, the destination leaves resized; the carrier image is deleted', async () => {
    const { uuid, on } = await boot();
    const migration = await move(uuid, on('n1'));
    const imageId = (await store.latestMigration(uuid))!.image_id;
    await invoke(nodes.n1!.compute, resizeDecision('confirm_resize', on('n2', 'resized'), migration));
    await casts.settle();
    assert.deepEqual(casts.failures, []);
    assert.equal(nodes.n1!.agent.instances.has(uuid), false);
    assert.equal(nodes.n2!.agent.instances.get(uuid)!.power_state, 'running');
    const r = await row(uuid);
    assert.equal(r.host, 'n2');
    assert.equal(r.vm_state, 'active');
    assert.equal((await store.latestMigration(uuid))!.status, 'confirmed');
    assert.deepEqual(await nodes.n1!.manager.usage(), { VCPU: 0, MEMORY_MB: 0, DISK_GB: 0 });
    assert.deepEqual(await nodes.n2!.manager.usage(), { VCPU: 2, MEMORY_MB: 256, DISK_GB: 1 });
    assert.equal(images.records.has(imageId), false);
    assert.ok(nodes.n2!.pub.events().includes('instance.resize_confirm.end'));
    // A redelivered confirm changes nothing.
    await invoke(nodes.n1!.compute, resizeDecision('confirm_resize', on('n2', 'resized'), migration));
    await casts.settle();
    assert.equal((await row(uuid)).vm_state, 'active');
  });

  it('reverts on the destination: its container and claim go, the source starts the original again with the old flavor', async () => {
    const { uuid, on } = await boot();
    const migration = await move(uuid, on('n1'));
    await invoke(nodes.n2!.compute, resizeDecision('revert_resize', on('n2', 'resized'), migration));
    await casts.settle();
    assert.deepEqual(casts.failures, []);
    assert.equal(nodes.n2!.agent.instances.has(uuid), false);
    assert.equal(nodes.n1!.agent.instances.get(uuid)!.power_state, 'running');
    const r = await row(uuid);
    assert.equal(r.host, 'n1');
    assert.equal(r.vm_state, 'active');
    assert.equal(JSON.parse(r.flavor).memory_mb, 128);
    assert.equal((await store.latestMigration(uuid))!.status, 'reverted');
    assert.deepEqual(await nodes.n1!.manager.usage(), { VCPU: 1, MEMORY_MB: 128, DISK_GB: 1 });
    assert.deepEqual(await nodes.n2!.manager.usage(), { VCPU: 0, MEMORY_MB: 0, DISK_GB: 0 });
    assert.ok(nodes.n1!.pub.events().includes('instance.resize_revert.end'));
  });

  it('migrates a stopped instance with its flavor: it stays stopped on the destination', async () => {
    const { uuid, on } = await boot();
    await nodes.n1!.agent.instanceAction(uuid, { action: 'stop' });
    await store.update(await row(uuid), { vm_state: 'stopped', power_state: 4 });
    await move(uuid, on('n1', 'stopped'), small, 'migration');
    assert.deepEqual(casts.failures, []);
    const r = await row(uuid);
    assert.equal(r.host, 'n2');
    assert.equal(r.vm_state, 'resized');
    assert.equal(nodes.n2!.agent.instances.get(uuid)!.power_state, 'stopped');
    assert.equal((await store.latestMigration(uuid))!.migration_type, 'migration');
  });

  it('a destination that cannot fetch the image refuses in prep: nothing is sent, the move is error', async () => {
    const { uuid, on } = await boot();
    nodes.n2!.agent.failNext('fetchImage', agentError('IMAGE_NOT_FOUND', 'image img not found in the image service', { image_id: 'img' }));
    await assert.rejects(move(uuid, on('n1')), (err: { className?: string }) => err.className === 'MigrationError');
    assert.deepEqual(casts.log, []);
    assert.equal((await row(uuid)).host, 'n1');
    assert.equal(nodes.n1!.agent.instances.get(uuid)!.power_state, 'running');
  });

  it('a failed snapshot on the source starts the guest again and leaves the move error, no image behind', async () => {
    const { uuid, on } = await boot();
    nodes.n1!.agent.snapshotFails = { code: 'IMAGE_UPLOAD_FAILED', message: 'store full' };
    await move(uuid, on('n1'));
    assert.equal(casts.failures.length, 1);
    assert.deepEqual(casts.log, ['n2->n1:resize_instance']);
    const r = await row(uuid);
    assert.equal(r.host, 'n1');
    assert.equal(r.vm_state, 'active');
    assert.equal(r.task_state, null);
    assert.equal(nodes.n1!.agent.instances.get(uuid)!.power_state, 'running');
    assert.equal((await store.latestMigration(uuid))!.status, 'error');
    assert.equal([...images.records.values()].filter((i) => i.status !== 'active').length, 0);
    assert.deepEqual(await nodes.n2!.manager.usage(), { VCPU: 0, MEMORY_MB: 0, DISK_GB: 0 });
  });

  it("refuses a finish_resize whose disk_info is not a Berth node's", () => {
    for (const bad of [
      '',
      '{}',
      '{"berth_move":{"image_id":"x","bytes":1}}',
      JSON.stringify({ berth_move: { image_id: '6f1c2b9e-1d2c-4a7b-9b1e-0c5d3f2a8e41', bytes: 1 } }),
    ]) {
      assert.throws(
        () => carriedOf(bad),
        (err: { className?: string }) => err.className === 'MigrationError',
      );
    }
  });
});
