import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import type { Volume } from '../../../agent/client/volumes.js';
import { BerthError } from '../../../common/errors.js';
import { silentLogger } from '../../../common/log.js';
import { berthEndpoint } from '../../../driver/compute/berth-endpoint.js';
import { computeEndpoint } from '../../../driver/compute/endpoint.js';
import { LOCAL_VOLUMES_KEY, type LocalVolumeSource } from '../../../driver/compute/local-volumes.js';
import { ComputeManager } from '../../../driver/compute/manager.js';
import { InstanceStore } from '../../../driver/compute/store.js';
import { openDriverDatabase } from '../../../driver/db/index.js';
import { MigrationRow } from '../../../driver/db/models.js';
import type { Endpoint } from '../../../driver/rpc/dispatcher.js';
import {
  buildAndRunInstance,
  evacuateInstance,
  flavorPrimitive,
  imageDict,
  instancePrimitive,
  migrationPrimitive,
  prepResize,
  shelveInstance,
  shelveOffloadInstance,
} from '../../../tools/lib/nova-requests.js';
import { InProcessCasts } from '../../support/in-process-casts.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';
import { FakeImageService } from '../../fakes/glance-images.js';
import { FakePublisher } from '../../fakes/publisher.js';
import { deliver, TEST_CTX, testNotifier, testResources } from '../../support/driver-fixtures.js';

/** The agent's volumes API as the driver reads it: one list of every project's volumes. */
class FakeVolumes implements LocalVolumeSource {
  volumes: Volume[] = [];
  lists = 0;
  async list(): Promise<Volume[]> {
    this.lists++;
    return this.volumes.map((v) => ({ ...v }));
  }
  attach(uuid: string, name = 'data', mount_point = '/srv/data'): Volume {
    const v: Volume = {
      id: randomUUID(),
      name,
      project_id: 'p',
      size_gb: 1,
      status: 'in-use',
      attachment: { instance_uuid: uuid, mount_point, attached_at: new Date().toISOString() },
      created_at: new Date().toISOString(),
    };
    this.volumes.push(v);
    return v;
  }
  /** A detach of a volume the container binds: it leaves with the container. */
  detachAll(): void {
    for (const v of this.volumes) v.status = 'detaching';
  }
}

interface Node {
  host: string;
  agent: FakeAgentClient;
  volumes: FakeVolumes;
  manager: ComputeManager;
  compute: Endpoint;
  berth: Endpoint;
}

const refusal = (e: unknown): boolean => {
  assert.ok(e instanceof BerthError, String(e));
  assert.equal(e.code, 'LOCAL_VOLUMES_ATTACHED');
  assert.match(e.message, /detach them first/);
  assert.match(e.message, /data \([0-9a-f-]{36}\) at \/srv\/data/);
  return true;
};

/** Two nodes on one database, each with its own agent and volumes; casts between them delivered in process. */
describe('moves of an instance with local volumes attached are refused before anything changes', () => {
  let store: InstanceStore;
  let images: FakeImageService;
  let nodes: Record<string, Node>;
  let casts: InProcessCasts;
  const flavor = { vcpus: 1, memory_mb: 128, name: 'small' };

  const setUp = async (shelvedOffloadTime = 0) => {
    store = new InstanceStore(await openDriverDatabase('sqlite://'));
    images = new FakeImageService();
    images.add('img', { name: 'base', status: 'active' });
    casts = new InProcessCasts((host, ns) => (ns === 'berth' ? nodes[host]!.berth : nodes[host]!.compute), TEST_CTX);
    nodes = {};
    for (const host of ['n1', 'n2']) {
      const agent = new FakeAgentClient();
      agent.snapshotPolls = 0;
      const volumes = new FakeVolumes();
      const notifier = testNotifier(new FakePublisher(), host);
      const manager = new ComputeManager({
        host,
        node: host,
        store,
        agent,
        notifier,
        resources: testResources({ memory_mb: 1024, reserved_host_memory_mb: 0 }),
        images,
        peers: casts.peers(host),
        volumes,
        shelvedOffloadTime,
        log: silentLogger(),
      });
      nodes[host] = { host, agent, volumes, manager, compute: computeEndpoint(manager, agent), berth: berthEndpoint(host, store, manager) };
    }
  };
  afterEach(() => store.close());

  const boot = async () => {
    const inst = instancePrimitive({ image_id: 'img', flavor });
    const uuid = (inst['nova_object.data'] as { uuid: string }).uuid;
    await deliver(nodes.n1!.compute, buildAndRunInstance(inst, imageDict({ id: 'img' })), TEST_CTX);
    const now = async (extra: { task_state?: string | null; sysmeta?: Record<string, string> } = {}) => {
      const r = (await store.get(uuid))!;
      const p = instancePrimitive({ uuid, image_id: 'img', flavor, host: r.host, vm_state: r.vm_state, task_state: extra.task_state ?? null });
      if (extra.sysmeta) (p['nova_object.data'] as Record<string, unknown>).system_metadata = extra.sysmeta;
      return p;
    };
    return { uuid, now };
  };
  const row = async (uuid: string) => (await store.get(uuid))!;
  const state = async (uuid: string) => {
    const r = await row(uuid);
    return [r.host, r.vm_state, r.task_state];
  };
  const actions = async (uuid: string) => (await store.actions(uuid)).map((a) => `${a.action}:${a.result}`);
  const fault = async (uuid: string) => (await store.latestFault(uuid))?.message ?? '';
  const shelveImage = async () => (await images.createImage({ name: 'x-shelved', container_format: 'docker', disk_format: 'raw' })).id;

  it('shelve with the offload at once: refused before the stop and the snapshot; the instance stays active with a fault; after a detach it is offloaded', async () => {
    await setUp(0);
    const { uuid, now } = await boot();
    nodes.n1!.volumes.attach(uuid);
    const imageId = await shelveImage();
    await assert.rejects(deliver(nodes.n1!.compute, shelveInstance(await now({ task_state: 'shelving' }), imageId), TEST_CTX), refusal);
    assert.deepEqual(await state(uuid), ['n1', 'active', null]);
    assert.equal(nodes.n1!.agent.instances.get(uuid)?.power_state, 'running', 'the guest was not stopped');
    assert.ok(!nodes.n1!.agent.calls.includes('snapshotInstance'));
    assert.match(await fault(uuid), /cannot be shelved and offloaded with local volumes attached/);
    assert.deepEqual(await actions(uuid), ['create:Success', 'shelve:Error']);
    assert.equal(await images.getImage(imageId), null, "nova-api's queued snapshot image is deleted, as on any failed shelve");

    nodes.n1!.volumes.detachAll();
    await deliver(nodes.n1!.compute, shelveInstance(await now({ task_state: 'shelving' }), await shelveImage()), TEST_CTX);
    assert.deepEqual(await state(uuid), ['n1', 'shelved_offloaded', null]);
  });

  it('shelve without offload keeps working with the volume; the offload is refused (shelved here, with a fault) and the periodic offload passes it by', async () => {
    await setUp(1);
    const { uuid, now } = await boot();
    nodes.n1!.volumes.attach(uuid);
    await deliver(nodes.n1!.compute, shelveInstance(await now(), await shelveImage()), TEST_CTX);
    assert.deepEqual(await state(uuid), ['n1', 'shelved', null]);
    await assert.rejects(deliver(nodes.n1!.compute, shelveOffloadInstance(await now({ task_state: 'shelving_offloading' })), TEST_CTX), refusal);
    assert.deepEqual(await state(uuid), ['n1', 'shelved', null]);
    assert.ok(nodes.n1!.agent.instances.has(uuid), 'the container (and so the volume) stays');
    const faults = await actions(uuid);
    assert.deepEqual(faults, ['create:Success', 'shelve:Success', 'shelve_offload:Error']);

    assert.deepEqual(await nodes.n1!.manager.shelves.pollShelved(Date.now() + 3_600_000), []);
    assert.deepEqual(await actions(uuid), faults, 'no new failed offload');
    nodes.n1!.volumes.detachAll();
    assert.deepEqual(await nodes.n1!.manager.shelves.pollShelved(Date.now() + 3_600_000), [uuid]);
  });

  it('same-host resize keeps working with the volume', async () => {
    await setUp();
    const { uuid, now } = await boot();
    nodes.n1!.volumes.attach(uuid);
    const migration = migrationPrimitive({ instance_uuid: uuid, host: 'n1', dest: 'n1', migration_type: 'resize' });
    await deliver(nodes.n1!.compute, prepResize(await now(), flavorPrimitive({ vcpus: 1, memory_mb: 256, name: 'big' }), migration, 'n1'), TEST_CTX);
    await casts.settle();
    assert.deepEqual(casts.failures, []);
    assert.equal((await row(uuid)).vm_state, 'resized');
  });

  it('resize to another node: the source refuses in resize_instance before it stops the guest; the move is error, the instance active with a fault', async () => {
    await setUp();
    const { uuid, now } = await boot();
    nodes.n1!.volumes.attach(uuid);
    const migration = migrationPrimitive({ instance_uuid: uuid, host: 'n1', dest: 'n2', migration_type: 'resize' });
    await deliver(nodes.n2!.compute, prepResize(await now(), flavorPrimitive({ vcpus: 1, memory_mb: 256, name: 'big' }), migration, 'n2'), TEST_CTX);
    await casts.settle();
    assert.deepEqual(casts.log, ['n2->n1:resize_instance'], 'no finish_resize');
    assert.equal(casts.failures.length, 1);
    refusal(casts.failures[0]);
    assert.deepEqual(await state(uuid), ['n1', 'active', null]);
    assert.equal(nodes.n1!.agent.instances.get(uuid)?.power_state, 'running');
    assert.ok(!nodes.n1!.agent.calls.includes('snapshotInstance'));
    assert.match(await fault(uuid), /cannot be resized to another host/);
    assert.equal((await store.latestMigration(uuid))?.status, 'error');
  });

  it('the host mirrors attached volumes into system_metadata; a destination refuses a migration by them before its claim', async () => {
    await setUp();
    const { uuid, now } = await boot();
    const v = nodes.n1!.volumes.attach(uuid);
    await nodes.n1!.manager.syncPowerStates();
    const sm = (JSON.parse((await row(uuid)).nova) as { system_metadata: Record<string, string> }).system_metadata;
    assert.equal(sm[LOCAL_VOLUMES_KEY], `data (${v.id}) at /srv/data`);

    // As nova sends it: the instance with its system_metadata.
    const migration = migrationPrimitive({ instance_uuid: uuid, host: 'n1', dest: 'n2', migration_type: 'migration' });
    await assert.rejects(deliver(nodes.n2!.compute, prepResize(await now({ sysmeta: sm }), flavorPrimitive(flavor), migration, 'n2'), TEST_CTX), refusal);
    await casts.settle();
    assert.deepEqual(casts.log, [], 'the source was never asked');
    assert.deepEqual(nodes.n2!.agent.fetched, [], 'nothing done on the destination');
    assert.deepEqual(await nodes.n2!.manager.usage(), { VCPU: 0, MEMORY_MB: 0, DISK_GB: 0 }, 'no claim');
    assert.deepEqual(await state(uuid), ['n1', 'active', null]);
    assert.match(await fault(uuid), /cannot be migrated to another host/);

    // A detach is mirrored at the next sync: the key goes.
    nodes.n1!.volumes.detachAll();
    await nodes.n1!.manager.syncPowerStates();
    assert.equal((JSON.parse((await row(uuid)).nova) as { system_metadata: Record<string, string> }).system_metadata[LOCAL_VOLUMES_KEY], undefined);
  });

  it('evacuation: not refused (the host is down, as a local disk is left behind): the instance rebuilt on the destination without the volumes', async () => {
    await setUp();
    const { uuid, now } = await boot();
    nodes.n1!.volumes.attach(uuid);
    await nodes.n1!.manager.syncPowerStates();
    const migration = migrationPrimitive({ instance_uuid: uuid, host: 'n1', dest: null, migration_type: 'evacuation', status: 'accepted' });
    await deliver(nodes.n2!.compute, evacuateInstance(await now(), migration), TEST_CTX);
    await casts.settle();
    assert.notEqual(await nodes.n2!.agent.getInstance(uuid), null, 'the instance runs on the destination');
    assert.equal((await MigrationRow.findOne({ where: { instance_uuid: uuid } }))?.status, 'done');
  });
});
