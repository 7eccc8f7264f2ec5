import { strict as assert } from 'node:assert';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { silentLogger } from '../../../common/log.js';
import { openDriverDatabase } from '../../../driver/db/index.js';
import { ComputeManager } from '../../../driver/compute/manager.js';
import { hostResources } from '../../../driver/compute/resources.js';
import { InstanceStore } from '../../../driver/compute/store.js';
import { Notifier } from '../../../driver/notify/notifier.js';
import { decodeInstance } from '../../../driver/objects/instance.js';
import { instancePrimitive } from '../../../tools/lib/nova-requests.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';
import { FakePublisher } from '../../fakes/publisher.js';

const ADMIN_URL = process.env.BERTH_TEST_POSTGRES ?? 'postgres://berth:berth@127.0.0.1:5432/berth_test';

/** The driver's records on PostgreSQL, the shared database of multi-node deployments. */
describe('driver database on PostgreSQL', function () {
  this.timeout(60_000);
  const dbName = `berth_it_${randomUUID().slice(0, 8)}`;
  let admin: pg.Client;
  let store: InstanceStore;
  let manager: ComputeManager;
  let agent: FakeAgentClient;

  before(async () => {
    admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${dbName}`);
    const url = new URL(ADMIN_URL);
    url.pathname = `/${dbName}`;
    store = new InstanceStore(await openDriverDatabase(url.toString()));
    agent = new FakeAgentClient();
    const rabbit = {
      amqp_durable_queues: false,
      amqp_auto_delete: false,
      rabbit_ha_queues: false,
      rabbit_quorum_queue: false,
      rabbit_transient_queues_ttl: 1800,
    };
    const notifier = new Notifier(new FakePublisher(), {
      exchange: 'nova',
      host: 'pg1',
      format: 'versioned',
      driver: 'messagingv2',
      versionedTopic: 'versioned_notifications',
      legacyTopic: 'notifications',
      rabbit,
      log: silentLogger(),
    });
    const resources = hostResources(
      {
        vcpus: 8,
        memory_mb: 4096,
        disk_gb: 100,
        reserved_host_cpus: 0,
        reserved_host_memory_mb: 0,
        reserved_host_disk_mb: 0,
        cpu_allocation_ratio: 1,
        ram_allocation_ratio: 1,
        disk_allocation_ratio: 1,
      },
      '/',
    );
    manager = new ComputeManager({ host: 'pg1', node: 'pg1', store, agent, notifier, resources, log: silentLogger() });
  });

  after(async () => {
    await store?.close();
    await admin?.query(`DROP DATABASE IF EXISTS ${dbName}`).catch(() => undefined);
    await admin?.end();
  });

  it('applies the migrations and runs the lifecycle: build, stop, delete, faults, actions', async () => {
    const ctx = { request_id: 'req-11111111-1111-4111-8111-111111111111' };
    const i = decodeInstance(instancePrimitive({ image_id: 'img', flavor: { vcpus: 2, memory_mb: 256 } }));
    await manager.buildAndRun(ctx, i, 'img');
    assert.equal((await store.get(i.uuid))?.vm_state, 'active');
    await manager.powerAction(ctx, i.uuid, 'stop', () => agent.instanceAction(i.uuid, { action: 'stop' }));
    assert.equal((await store.get(i.uuid))?.vm_state, 'stopped');
    await manager.terminate(ctx, i.uuid);
    const row = await store.get(i.uuid);
    assert.equal(row?.vm_state, 'deleted');
    assert.ok(row?.deleted_at instanceof Date);
    assert.deepEqual(
      (await store.actions(i.uuid)).map((a) => a.action),
      ['create', 'stop', 'delete'],
    );
    const tables = await admin.query(`SELECT count(*)::int AS n FROM pg_database WHERE datname = $1`, [dbName]);
    assert.equal(tables.rows[0].n, 1);
  });

  it('guards updates with the expected task state, as nova does', async () => {
    const i = decodeInstance(instancePrimitive({ image_id: 'img', flavor: { vcpus: 1, memory_mb: 64 } }));
    await manager.buildAndRun({}, i, 'img');
    const row = (await store.get(i.uuid))!;
    assert.equal(await store.update(row, { task_state: 'powering-off' }, 'rebooting'), false);
    assert.equal(await store.update(row, { task_state: 'powering-off' }, null), true);
    assert.equal(row.task_state, 'powering-off');
  });

  it('remembers processed message ids and forgets old ones', async () => {
    const id = randomUUID().replace(/-/g, '');
    assert.equal(await store.seen(id), false);
    await store.record(id, 'build_and_run_instance');
    await store.record(id, 'build_and_run_instance');
    assert.equal(await store.seen(id), true);
    assert.equal(await store.pruneMessages(-1000), 1);
    assert.equal(await store.seen(id), false);
  });
});
