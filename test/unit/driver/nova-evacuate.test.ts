import { strict as assert } from 'node:assert';
import { silentLogger } from '../../../common/log.js';
import { ComputeManager } from '../../../driver/compute/manager.js';
import { InstanceStore } from '../../../driver/compute/store.js';
import { openDriverDatabase } from '../../../driver/db/index.js';
import { Notifier } from '../../../driver/notify/notifier.js';
import type { NovaControlPlane } from '../../../driver/nova/plane.js';
import { computeEndpoint } from '../../../driver/compute/endpoint.js';
import { buildAndRunInstance, imageDict, instancePrimitive, migrationPrimitive } from '../../../tools/lib/nova-requests.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';
import { FakeConductor } from '../../fakes/nova-conductor.js';
import { FakePlacement } from '../../fakes/placement.js';
import { FakePublisher } from '../../fakes/publisher.js';
import { TEST_RABBIT as rabbit, testNovaPlane, testResources } from '../../support/driver-fixtures.js';

const resources = testResources({ memory_mb: 1024, reserved_host_memory_mb: 0 });

/** The returning old host of an evacuation in nova mode: nova's migrations, not the node's own records, say what went. */
describe('nova mode: the returning old host reaps what nova evacuated (fake conductor and placement)', () => {
  let conductor: FakeConductor;
  let placement: FakePlacement;
  let agent: FakeAgentClient;
  let store: InstanceStore;
  let plane: NovaControlPlane;
  let manager: ComputeManager;

  beforeEach(async () => {
    conductor = new FakeConductor();
    placement = new FakePlacement();
    agent = new FakeAgentClient();
    store = new InstanceStore(await openDriverDatabase('sqlite://'));
    plane = testNovaPlane({ conductor, placement, resources });
    const notifier = new Notifier(new FakePublisher(), {
      exchange: 'nova',
      host: 'berth1',
      format: 'versioned',
      driver: 'messagingv2',
      versionedTopic: 'versioned_notifications',
      legacyTopic: 'notifications',
      rabbit,
      log: silentLogger(),
    });
    manager = new ComputeManager({ host: 'berth1', node: 'berth1', store, agent, notifier, resources, plane, log: silentLogger() });
    await plane.start();
  });
  afterEach(async () => {
    await plane.stop();
    await store.close();
  });

  it("removes the container and the node's record, releases this provider's allocations and completes the migration; others stay", async () => {
    const ep = computeEndpoint(manager, agent);
    const boot = async () => {
      const inst = instancePrimitive({ image_id: 'img', flavor: { vcpus: 1, memory_mb: 64 } });
      conductor.addInstance(inst as never);
      await ep.methods.build_and_run_instance!.handler(
        {},
        ep.deserialize!(buildAndRunInstance(inst, imageDict({ id: 'img' })).args as Record<string, unknown>, ep.methods.build_and_run_instance!),
      );
      return (inst['nova_object.data'] as { uuid: string }).uuid;
    };
    const gone = await boot();
    const stays = await boot();
    assert.equal((await store.get(gone))?.vm_state, 'active');
    // While berth1 was down, nova evacuated `gone` to berth2: the migration done, the instance's
    // allocations still on this node's provider as well as the new one.
    const m = migrationPrimitive({ instance_uuid: gone, host: 'berth1', dest: 'berth2', migration_type: 'evacuation', status: 'done' });
    const muuid = (m['nova_object.data'] as { uuid: string }).uuid;
    conductor.migrations.set(muuid, { ...(m['nova_object.data'] as Record<string, unknown>) });
    placement.allocations.set(gone, { VCPU: 1, MEMORY_MB: 64 });
    placement.allocationProvider.set(gone, plane.providerUuid!);

    assert.deepEqual(await manager.evacuations.reapEvacuated(true), [gone]);
    assert.equal(await agent.getInstance(gone), null);
    assert.ok(await agent.getInstance(stays));
    assert.equal((await store.get(gone))?.deleted, true);
    assert.equal((await store.get(stays))?.vm_state, 'active');
    assert.equal(placement.allocations.has(gone), false);
    assert.equal(conductor.migrations.get(muuid)!.status, 'completed');
    // Completed: not found again.
    assert.deepEqual(await manager.evacuations.reapEvacuated(true), []);
    assert.deepEqual(await manager.evacuations.reapEvacuated(false), []);
  });
});
