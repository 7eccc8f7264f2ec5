import { strict as assert } from 'node:assert';
import { silentLogger } from '../../../common/log.js';
import { computeEndpoint } from '../../../driver/compute/endpoint.js';
import { InstancePorts } from '../../../driver/compute/instance-ports.js';
import { ComputeManager } from '../../../driver/compute/manager.js';
import { InstanceStore } from '../../../driver/compute/store.js';
import { InstanceEvents } from '../../../driver/compute/vif-events.js';
import { openDriverDatabase } from '../../../driver/db/index.js';
import { decodeInstance } from '../../../driver/objects/instance.js';
import type { Endpoint } from '../../../driver/rpc/dispatcher.js';
import { evacuateInstance, imageDict, instancePrimitive, migrationPrimitive, unshelveInstance } from '../../../tools/lib/nova-requests.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';
import { FakeImageService } from '../../fakes/glance-images.js';
import { FakeNeutron } from '../../fakes/neutron.js';
import { FakePublisher } from '../../fakes/publisher.js';
import { TEST_RESOURCES as resources, testNotifier, deliver } from '../../support/driver-fixtures.js';

const CTX = { request_id: 'req-00000000-0000-4000-8000-000000000000', user_id: 'u', project_id: 'p' };

/**
 * An instance built on another node arrives on this one without a record of it (its own
 * database): an unshelve or an evacuation. With Neutron, the node takes the instance's ports from
 * nova's info cache and binds them here; before, it put the container on its own project network
 * with the port's address, which the agent refused ("fixed_ip … is not an instance address of the
 * project's subnet"), and the instance stayed shelved_offloaded.
 */
describe('an instance of another node arrives with its Neutron ports (unshelve, evacuation)', () => {
  let neutron: FakeNeutron;
  let netId: string;
  let node: { store: InstanceStore; agent: FakeAgentClient; compute: Endpoint };
  const small = { vcpus: 1, memory_mb: 128, name: 'small' };

  beforeEach(async () => {
    neutron = new FakeNeutron();
    netId = neutron.addNetwork({ name: 'berth-net', cidr: '10.77.0.0/24', dns_nameservers: [] }).network.id;
    neutron.agentHosts.add('l2-n2');
    const store = new InstanceStore(await openDriverDatabase('sqlite://'));
    const agent = new FakeAgentClient();
    const ports = new InstancePorts({
      neutron,
      plane: { saveNetworkInfo: async () => undefined },
      events: new InstanceEvents(),
      host: 'l2-n2',
      vifPluggingTimeout: 0,
      vifPluggingIsFatal: false,
      log: silentLogger(),
    });
    const manager = new ComputeManager({
      host: 'n2',
      node: 'n2',
      store,
      agent,
      notifier: testNotifier(new FakePublisher(), 'n2'),
      resources,
      images: new FakeImageService(),
      ports,
      log: silentLogger(),
    });
    node = { store, agent, compute: computeEndpoint(manager, agent) };
  });
  afterEach(() => node.store.close());

  /** A port of another node's instance, bound to that node, and nova's instance with it in its info cache. */
  const elsewhere = async (o: { preserve?: boolean } = {}) => {
    const uuid = decodeInstance(instancePrimitive({ image_id: 'img', flavor: small })).uuid;
    const port = await neutron.createPort({ network_id: netId, project_id: 'p', device_id: uuid, device_owner: 'compute:nova', host: 'l2-n1' });
    const vif = { id: port.id, address: port.mac_address, type: 'bridge', preserve_on_delete: o.preserve === true, network: { id: netId } };
    const instance = (host: string | null, vm_state: string, task_state: string) =>
      instancePrimitive({ uuid, image_id: 'img', flavor: small, host, vm_state, task_state, network_info: [vif] });
    return { uuid, port, instance };
  };

  const pluggedPorts = (uuid: string) => node.agent.instances.get(uuid)!.spec.vifs?.map((v) => v.portId);

  it('unshelve: the port bound here and plugged, no address asked of the project network', async () => {
    const { uuid, port, instance } = await elsewhere();
    await deliver(node.compute, unshelveInstance(instance(null, 'shelved_offloaded', 'unshelving'), imageDict({ id: 'snap' }), 'n2'), CTX);
    const row = (await node.store.get(uuid))!;
    assert.deepEqual([row.host, row.vm_state], ['n2', 'active'], (await node.store.latestFault(uuid))?.message);
    assert.equal(neutron.ports.get(port.id)!['binding:host_id'], 'l2-n2');
    assert.deepEqual(pluggedPorts(uuid), [port.id]);
    assert.equal(node.agent.instances.get(uuid)!.spec.fixed_ip ?? null, null);
  });

  it('evacuation: the port bound here and plugged', async () => {
    const { uuid, port, instance } = await elsewhere();
    const migration = migrationPrimitive({ instance_uuid: uuid, host: 'n1', dest: null, migration_type: 'evacuation', status: 'accepted' });
    await deliver(node.compute, evacuateInstance(instance('n1', 'active', 'rebuilding'), migration), CTX);
    const row = (await node.store.get(uuid))!;
    assert.deepEqual([row.host, row.vm_state], ['n2', 'active'], (await node.store.latestFault(uuid))?.message);
    assert.equal(neutron.ports.get(port.id)!['binding:host_id'], 'l2-n2');
    assert.deepEqual(pluggedPorts(uuid), [port.id]);
  });

  it("a port its caller made stays the caller's: a delete after the unshelve unbinds it, one Berth made is deleted", async () => {
    for (const preserve of [true, false]) {
      const { port, instance } = await elsewhere({ preserve });
      await deliver(node.compute, unshelveInstance(instance(null, 'shelved_offloaded', 'unshelving'), imageDict({ id: 'snap' }), 'n2'), CTX);
      await deliver(node.compute, { method: 'terminate_instance', args: { instance: instance('n2', 'active', 'deleting'), bdms: [] } }, CTX);
      if (preserve) assert.equal(neutron.ports.get(port.id)?.device_id, '', 'unbound and kept');
      else assert.equal(neutron.ports.has(port.id), false, 'deleted');
    }
  });
});
