import { strict as assert } from 'node:assert';
import { Writable } from 'node:stream';
import { createLogger, silentLogger } from '../../../common/log.js';
import { openDriverDatabase } from '../../../driver/db/index.js';
import { ComputeManager } from '../../../driver/compute/manager.js';
import { InstanceStore } from '../../../driver/compute/store.js';
import { InstancePorts } from '../../../driver/compute/instance-ports.js';
import { InstanceEvents } from '../../../driver/compute/vif-events.js';
import { BUILD_STAGES_MSG, type BuildTimeline } from '../../../driver/compute/build-stages.js';
import { Notifier } from '../../../driver/notify/notifier.js';
import { decodeInstance } from '../../../driver/objects/instance.js';
import { computeEndpoint } from '../../../driver/compute/endpoint.js';
import { agentError } from '../../../agent/client/errors.js';
import { instancePrimitive } from '../../../tools/lib/nova-requests.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';
import { FakePublisher } from '../../fakes/publisher.js';
import { FakeNeutron } from '../../fakes/neutron.js';
import { TEST_RABBIT as rabbit, TEST_RESOURCES as resources } from '../../support/driver-fixtures.js';

const L2_HOST = 'l2-host';

/** Polls (bounded: 2 s) until `ok` holds. */
async function until(ok: () => boolean): Promise<boolean> {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  return ok();
}

/**
 * A build on Neutron's ports runs what it can side by side (nova's _allocate_network_async): the
 * image comes while the ports are made, and every failure still leaves no port and no container.
 * Each build's stages are logged once it ends.
 */
describe('compute manager: a Neutron build overlaps its steps (fake agent, fake Neutron)', () => {
  let agent: FakeAgentClient;
  let store: InstanceStore;
  let neutron: FakeNeutron;
  let manager: ComputeManager;
  let netId: string;
  let timelines: BuildTimeline[];
  /** The control plane's save of the info cache (nova's conductor), as each test needs it. */
  let saveInfo: () => Promise<void>;
  const ctx = { request_id: 'req-00000000-0000-4000-8000-000000000000', user_id: 'u', project_id: 'p' };
  const newInstance = () => decodeInstance(instancePrimitive({ image_id: 'img', flavor: { vcpus: 1, memory_mb: 64 } }));
  const onNet = () => ({ requested: [{ network_id: netId, port_id: null, address: null }], securityGroups: [] });

  beforeEach(async () => {
    agent = new FakeAgentClient();
    store = new InstanceStore(await openDriverDatabase('sqlite://'));
    neutron = new FakeNeutron();
    neutron.agentHosts.add(L2_HOST);
    netId = neutron.addNetwork({ name: 'berth-net', cidr: '10.77.0.0/24', dns_nameservers: ['10.77.0.2'] }).network.id;
    timelines = [];
    saveInfo = async () => undefined;
    const sink = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        for (const line of chunk.toString().split('\n').filter(Boolean)) {
          const rec = JSON.parse(line) as { msg: string; build_stages?: BuildTimeline };
          if (rec.msg === BUILD_STAGES_MSG) timelines.push(rec.build_stages!);
        }
        done();
      },
    });
    const notifier = new Notifier(new FakePublisher(), {
      exchange: 'nova',
      host: 'n1',
      format: 'unversioned',
      driver: 'messagingv2',
      versionedTopic: 'versioned_notifications',
      legacyTopic: 'notifications',
      rabbit,
      log: silentLogger(),
    });
    const ports = new InstancePorts({
      neutron,
      plane: { saveNetworkInfo: () => saveInfo() },
      events: new InstanceEvents(),
      host: L2_HOST,
      vifPluggingTimeout: 5,
      vifPluggingIsFatal: true,
      log: silentLogger(),
    });
    manager = new ComputeManager({ host: 'n1', node: 'n1', store, agent, notifier, resources, ports, log: createLogger('test', { destination: sink }) });
  });
  afterEach(() => store.close());

  /** Plays Neutron and nova-api: once the agent created the instance, each port goes ACTIVE and its event is relayed. */
  const relayPlugged = (uuid: string) => {
    const timer = setInterval(() => {
      if (!agent.instances.has(uuid)) return;
      clearInterval(timer);
      const events = [...neutron.ports.values()]
        .filter((p) => p.device_id === uuid)
        .map((p) => ({ name: 'network-vif-plugged', tag: p.id, status: 'completed', instance_uuid: uuid }));
      void computeEndpoint(manager, agent).methods.external_instance_event!.handler(ctx, { instances: [], events });
    }, 5);
    return () => clearInterval(timer);
  };

  it('fetches the image while the port is made: the port is created only once the fetch has begun', async () => {
    const createPort = neutron.createPort.bind(neutron);
    let overlapped = false;
    // Without the overlap the fetch would begin only after the port: this wait would fail.
    neutron.createPort = async (req) => {
      overlapped = await until(() => agent.calls.includes('fetchImage'));
      return createPort(req);
    };
    const i = newInstance();
    const stop = relayPlugged(i.uuid);
    await manager.buildAndRun(ctx, i, 'img', onNet());
    stop();
    assert.equal((await store.get(i.uuid))?.vm_state, 'active', (await store.latestFault(i.uuid))?.message);
    assert.ok(overlapped, 'the image fetch began before the port was created');
    assert.deepEqual(agent.fetched, ['img']);
  });

  it('an image already on the host is not fetched again', async () => {
    agent.cachedImages.add('img');
    const i = newInstance();
    const stop = relayPlugged(i.uuid);
    await manager.buildAndRun(ctx, i, 'img', onNet());
    stop();
    assert.equal((await store.get(i.uuid))?.vm_state, 'active');
    assert.ok(agent.calls.includes('hostImage'));
    assert.deepEqual(agent.fetched, []);
  });

  it('an image that cannot come fails the build with the agent create’s fault, after the port is made: no port, no container left', async () => {
    agent.knownImages.add('another-image');
    const i = newInstance();
    await manager.buildAndRun(ctx, i, 'img', onNet());
    assert.equal((await store.get(i.uuid))?.vm_state, 'error');
    assert.match((await store.latestFault(i.uuid))!.message, /image img not found/);
    assert.equal(neutron.ports.size, 0, 'the port made beside the fetch is deleted');
    assert.equal(agent.instances.has(i.uuid), false);
  });

  it('a port that cannot be made fails the build while the fetch runs: no port, no container', async () => {
    const fetchImage = agent.fetchImage.bind(agent);
    let fetchDone = false;
    agent.fetchImage = async (id) => {
      await new Promise((r) => setTimeout(r, 50));
      fetchDone = true;
      return fetchImage(id);
    };
    neutron.agentHosts.clear();
    const i = newInstance();
    await manager.buildAndRun(ctx, i, 'img', onNet());
    assert.equal((await store.get(i.uuid))?.vm_state, 'error');
    assert.equal((await store.latestFault(i.uuid))!.details, 'PortBindingFailed');
    assert.equal(neutron.ports.size, 0);
    assert.equal(agent.instances.has(i.uuid), false);
    assert.ok(await until(() => fetchDone), 'the fetch ends on its own');
  });

  it('a container the agent cannot make fails the build and releases the port made beside it', async () => {
    agent.failNext('createInstance', agentError('RUNTIME_ERROR', 'engine refused'));
    const i = newInstance();
    await manager.buildAndRun(ctx, i, 'img', onNet());
    assert.equal((await store.get(i.uuid))?.vm_state, 'error');
    assert.equal(neutron.ports.size, 0);
    assert.equal(agent.instances.has(i.uuid), false);
  });

  it('logs each build’s stages once it ends, in order, with its outcome', async () => {
    const i = newInstance();
    const stop = relayPlugged(i.uuid);
    await manager.buildAndRun(ctx, i, 'img', onNet());
    stop();
    const failed = newInstance();
    agent.failNext('createInstance', agentError('RUNTIME_ERROR', 'engine refused'));
    await manager.buildAndRun(ctx, failed, 'img', onNet());
    assert.deepEqual(
      timelines.map((t) => [t.instance, t.outcome]),
      [
        [i.uuid, 'active'],
        [failed.uuid, 'error'],
      ],
    );
    const s = timelines[0]!.stages;
    const order = ['rpc_received', 'claimed', 'ports_bound', 'container_ready', 'vif_plugged', 'active'] as const;
    for (const name of [...order, 'image_ready'] as const) assert.equal(typeof s[name], 'number', `stage ${name} is timed`);
    for (let k = 1; k < order.length; k++) assert.ok(s[order[k]!]! >= s[order[k - 1]!]!, `${order[k]} after ${order[k - 1]}`);
    assert.equal(timelines[1]!.stages.container_ready, undefined);
  });

  it('saves the info cache while the agent makes the container, and goes active only once it is saved', async () => {
    let release: () => void = () => undefined;
    let saved = false;
    saveInfo = () =>
      new Promise<void>((r) => {
        release = () => {
          saved = true;
          r();
        };
      });
    const i = newInstance();
    const stop = relayPlugged(i.uuid);
    const build = manager.buildAndRun(ctx, i, 'img', onNet());
    assert.ok(await until(() => agent.instances.has(i.uuid)), 'the container is made while the save is pending');
    await new Promise((r) => setTimeout(r, 30));
    assert.equal((await store.get(i.uuid))?.vm_state, 'building', 'not active before the info cache is saved');
    release();
    await build;
    stop();
    assert.ok(saved);
    assert.equal((await store.get(i.uuid))?.vm_state, 'active');
  });

  it('an info cache that cannot be saved fails the build: the container removed and the port released', async () => {
    saveInfo = async () => {
      throw new Error('conductor unreachable');
    };
    const i = newInstance();
    const stop = relayPlugged(i.uuid);
    await manager.buildAndRun(ctx, i, 'img', onNet());
    stop();
    assert.equal((await store.get(i.uuid))?.vm_state, 'error');
    assert.equal(neutron.ports.size, 0);
    assert.equal(agent.instances.has(i.uuid), false);
  });
});
