import { strict as assert } from 'node:assert';
import { silentLogger } from '../../../common/log.js';
import { berthEndpoint } from '../../../driver/compute/berth-endpoint.js';
import { computeEndpoint } from '../../../driver/compute/endpoint.js';
import { InstancePorts } from '../../../driver/compute/instance-ports.js';
import { ComputeManager } from '../../../driver/compute/manager.js';
import { InstanceStore } from '../../../driver/compute/store.js';
import { InstanceEvents } from '../../../driver/compute/vif-events.js';
import { openDriverDatabase } from '../../../driver/db/index.js';
import { decodeInstance } from '../../../driver/objects/instance.js';
import type { Endpoint } from '../../../driver/rpc/dispatcher.js';
import { flavorPrimitive, instancePrimitive, migrationPrimitive, prepResize, resizeDecision } from '../../../tools/lib/nova-requests.js';
import { InProcessCasts } from '../../support/in-process-casts.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';
import { FakeImageService } from '../../fakes/glance-images.js';
import { FakeNeutron } from '../../fakes/neutron.js';
import { FakePublisher } from '../../fakes/publisher.js';
import { TEST_RESOURCES as resources, testNotifier, deliver } from '../../support/driver-fixtures.js';

const CTX = { request_id: 'req-00000000-0000-4000-8000-000000000000', user_id: 'u', project_id: 'p' };

const invoke = (ep: Endpoint, msg: Record<string, unknown>): Promise<unknown> => deliver(ep, msg, CTX);

interface Node {
  agent: FakeAgentClient;
  manager: ComputeManager;
  compute: Endpoint;
  berth: Endpoint;
  /** The host name this node's L2 agent reports ([neutron] binding_host). */
  l2: string;
}

/**
 * Neutron's ports follow an instance that moves between two nodes (nova's migrate_instance_finish
 * and setup_networks_on_host): bound to the destination's L2 host and plugged there, the
 * destination waiting for their network-vif-plugged, bound back to the source on revert; never
 * released by either node's container removal.
 */
describe('Neutron ports follow a resize to another node (fake agents, fake Neutron, one database)', () => {
  let store: InstanceStore;
  let neutron: FakeNeutron;
  let nodes: Record<string, Node>;
  let casts: InProcessCasts;
  let netId: string;
  const small = { vcpus: 1, memory_mb: 128, name: 'small' };
  const big = { vcpus: 2, memory_mb: 256, name: 'big' };

  /** Plays the L2 agent and nova-api: once `host`'s agent runs the instance, its ports go ACTIVE and their events reach that node. */
  const relayPlugged = (host: string, uuid: string) => {
    const n = nodes[host]!;
    const timer = setInterval(() => {
      if (n.agent.instances.get(uuid)?.power_state !== 'running') return;
      clearInterval(timer);
      const events = [...neutron.ports.values()]
        .filter((p) => p.device_id === uuid)
        .map((p) => ({ name: 'network-vif-plugged', tag: p.id, status: 'completed', instance_uuid: uuid }));
      for (const e of events) neutron.setStatus(e.tag, 'ACTIVE');
      void n.compute.methods.external_instance_event!.handler(CTX, { instances: [], events });
    }, 5);
    return () => clearInterval(timer);
  };

  beforeEach(async () => {
    store = new InstanceStore(await openDriverDatabase('sqlite://'));
    neutron = new FakeNeutron();
    netId = neutron.addNetwork({ name: 'berth-net', cidr: '10.77.0.0/24', dns_nameservers: [] }).network.id;
    const images = new FakeImageService();
    casts = new InProcessCasts((host, ns) => (ns === 'berth' ? nodes[host]!.berth : nodes[host]!.compute), CTX);
    nodes = {};
    for (const host of ['n1', 'n2']) {
      const l2 = `l2-${host}`;
      neutron.agentHosts.add(l2);
      const agent = new FakeAgentClient();
      agent.snapshotPolls = 0;
      const ports = new InstancePorts({
        neutron,
        plane: { saveNetworkInfo: async () => undefined },
        events: new InstanceEvents(),
        host: l2,
        vifPluggingTimeout: 1,
        vifPluggingIsFatal: true,
        log: silentLogger(),
      });
      const notifier = testNotifier(new FakePublisher(), host);
      const manager = new ComputeManager({ host, node: host, store, agent, notifier, resources, images, ports, peers: casts.peers(host), log: silentLogger() });
      nodes[host] = { agent, manager, compute: computeEndpoint(manager, agent), berth: berthEndpoint(host, store, manager), l2 };
    }
  });
  afterEach(() => store.close());

  /** Built on n1 on the Neutron network, then resized onto n2 (the source's stop takes the port DOWN). */
  const movedToN2 = async () => {
    const inst = instancePrimitive({ image_id: 'img', flavor: small });
    const i = decodeInstance(inst);
    const stop1 = relayPlugged('n1', i.uuid);
    await nodes.n1!.manager.buildAndRun(CTX, i, 'img', { requested: [{ network_id: netId, port_id: null, address: null }], securityGroups: [] });
    stop1();
    assert.equal((await store.get(i.uuid))?.vm_state, 'active', (await store.latestFault(i.uuid))?.message);
    const [port] = [...neutron.ports.values()];
    assert.equal(port!['binding:host_id'], 'l2-n1');
    neutron.setStatus(port!.id, 'DOWN');
    const stop2 = relayPlugged('n2', i.uuid);
    const on = (host: string, vm_state = 'active') => instancePrimitive({ uuid: i.uuid, image_id: 'img', flavor: small, host, vm_state, task_state: null });
    const migration = migrationPrimitive({ instance_uuid: i.uuid, host: 'n1', dest: 'n2', migration_type: 'resize' });
    await invoke(nodes.n2!.compute, prepResize(on('n1'), flavorPrimitive(big), migration, 'n2'));
    await casts.settle();
    stop2();
    assert.deepEqual(casts.failures, []);
    return { uuid: i.uuid, portId: port!.id, address: port!.fixed_ips[0]!.ip_address, migration, on };
  };

  it('finish_resize binds the port to the destination and plugs it there, once its network-vif-plugged came', async () => {
    const { uuid, portId, address } = await movedToN2();
    const row = (await store.get(uuid))!;
    assert.deepEqual([row.host, row.vm_state], ['n2', 'resized'], (await store.latestFault(uuid))?.message);
    const port = neutron.ports.get(portId)!;
    assert.equal(port['binding:host_id'], 'l2-n2');
    assert.equal(port.device_id, uuid);
    assert.equal(port.status, 'ACTIVE');
    const spec = nodes.n2!.agent.instances.get(uuid)!.spec;
    assert.deepEqual(
      spec.vifs?.map((v) => v.portId),
      [portId],
    );
    assert.equal(spec.fixed_ip ?? null, null);
    // The same address as before the move, as nova shows it.
    assert.equal(row.ip_address, address);
    assert.equal(JSON.parse(row.spec).neutron.network_info[0].id, portId);
  });

  it('a destination that never hears network-vif-plugged fails the move (vif_plugging_is_fatal): the migration is error', async () => {
    const inst = instancePrimitive({ image_id: 'img', flavor: small });
    const i = decodeInstance(inst);
    const stop1 = relayPlugged('n1', i.uuid);
    await nodes.n1!.manager.buildAndRun(CTX, i, 'img', { requested: [{ network_id: netId, port_id: null, address: null }], securityGroups: [] });
    stop1();
    const [port] = [...neutron.ports.values()];
    neutron.setStatus(port!.id, 'DOWN');
    // No relay plays the L2 agent on n2.
    const on = instancePrimitive({ uuid: i.uuid, image_id: 'img', flavor: small, host: 'n1', vm_state: 'active', task_state: null });
    const migration = migrationPrimitive({ instance_uuid: i.uuid, host: 'n1', dest: 'n2', migration_type: 'resize' });
    const started = Date.now();
    await invoke(nodes.n2!.compute, prepResize(on, flavorPrimitive(big), migration, 'n2'));
    await casts.settle();
    assert.ok(Date.now() - started >= 900, 'the destination waited for the event');
    assert.equal(casts.failures.length, 1);
    assert.match(String((casts.failures[0] as Error).message), /network-vif-plugged/);
    assert.equal((await store.latestMigration(i.uuid))!.status, 'error');
  });

  it('confirm keeps the port bound to the destination; the source removes only its container', async () => {
    const { uuid, portId, migration, on } = await movedToN2();
    await invoke(nodes.n1!.compute, resizeDecision('confirm_resize', on('n2', 'resized'), migration));
    await casts.settle();
    assert.deepEqual(casts.failures, []);
    assert.equal(nodes.n1!.agent.instances.has(uuid), false);
    const port = neutron.ports.get(portId)!;
    assert.equal(port['binding:host_id'], 'l2-n2');
    assert.equal(port.device_id, uuid);
    assert.equal((await store.get(uuid))?.vm_state, 'active');
  });

  it('revert binds the port back to the source, which starts the original with it', async () => {
    const { uuid, portId, migration, on } = await movedToN2();
    neutron.setStatus(portId, 'DOWN');
    const stop = relayPlugged('n1', uuid);
    await invoke(nodes.n2!.compute, resizeDecision('revert_resize', on('n2', 'resized'), migration));
    await casts.settle();
    stop();
    assert.deepEqual(casts.failures, []);
    const row = (await store.get(uuid))!;
    assert.deepEqual([row.host, row.vm_state], ['n1', 'active'], (await store.latestFault(uuid))?.message);
    const port = neutron.ports.get(portId)!;
    assert.equal(port['binding:host_id'], 'l2-n1');
    assert.equal(port.device_id, uuid);
    assert.equal(nodes.n2!.agent.instances.has(uuid), false);
    assert.equal(nodes.n1!.agent.instances.get(uuid)!.power_state, 'running');
    assert.deepEqual(
      nodes.n1!.agent.instances.get(uuid)!.spec.vifs?.map((v) => v.portId),
      [portId],
    );
  });
});
