import { strict as assert } from 'node:assert';
import { silentLogger } from '../../../common/log.js';
import { berthEndpoint } from '../../../driver/compute/berth-endpoint.js';
import { computeEndpoint } from '../../../driver/compute/endpoint.js';
import { InstancePorts } from '../../../driver/compute/instance-ports.js';
import { ComputeManager } from '../../../driver/compute/manager.js';
import { InstanceStore } from '../../../driver/compute/store.js';
import { InstanceEvents } from '../../../driver/compute/vif-events.js';
import { openDriverDatabase } from '../../../driver/db/index.js';
import type { NeutronPort, PortBinding, PortCreate } from '../../../driver/neutron/client.js';
import { decodeInstance } from '../../../driver/objects/instance.js';
import type { Endpoint } from '../../../driver/rpc/dispatcher.js';
import {
  evacuateInstance,
  flavorPrimitive,
  imageDict,
  instancePrimitive,
  migrationPrimitive,
  prepResize,
  resizeDecision,
  shelveInstance,
  unshelveInstance,
} from '../../../tools/lib/nova-requests.js';
import { InProcessCasts } from '../../support/in-process-casts.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';
import { FakeImageService } from '../../fakes/glance-images.js';
import { FakeNeutron } from '../../fakes/neutron.js';
import { FakePublisher } from '../../fakes/publisher.js';
import { TEST_RESOURCES as resources, testNotifier, deliver } from '../../support/driver-fixtures.js';

const CTX = { request_id: 'req-00000000-0000-4000-8000-000000000000', user_id: 'u', project_id: 'p' };
const invoke = (ep: Endpoint, msg: Record<string, unknown>): Promise<unknown> => deliver(ep, msg, CTX);

/**
 * A Neutron as fast as it can be: the port's network-vif-plugged reaches the node of the host a
 * port is bound to before the binding's answer does (the answer still says DOWN, as it was when
 * Neutron made it). A node that registers its wait only after the binding update never sees
 * the event.
 */
class EagerNeutron extends FakeNeutron {
  /** L2 host → the compute endpoint nova-api sends that host's events to. */
  readonly nodes = new Map<string, Endpoint>();
  /** at once: before the answer; later: 20 ms after it (the node had time to register); off: never. */
  mode: 'at-once' | 'later' | 'off' = 'at-once';

  override async createPort(req: PortCreate): Promise<NeutronPort> {
    return this.plugged(await super.createPort(req));
  }

  override async bindPort(id: string, b: PortBinding): Promise<NeutronPort> {
    return this.plugged(await super.bindPort(id, b));
  }

  private async plugged(answer: NeutronPort): Promise<NeutronPort> {
    const ep = this.nodes.get(answer['binding:host_id']);
    if (this.mode === 'off' || !ep) return answer;
    const send = async () => {
      this.setStatus(answer.id, 'ACTIVE');
      const events = [{ name: 'network-vif-plugged', tag: answer.id, status: 'completed', instance_uuid: answer.device_id }];
      await ep.methods.external_instance_event!.handler(CTX, { instances: [], events });
    };
    if (this.mode === 'at-once') await send();
    else setTimeout(() => void send(), 20);
    return answer;
  }
}

/**
 * nova's wait_for_instance_event wraps the binding update and the plug: the wait for
 * network-vif-plugged is registered before either, on every path that binds or plugs ports
 * (build with a new port or a given one, finish_resize on the destination, finish_revert_resize
 * on the source, unshelve and evacuation onto another node).
 */
describe('network-vif-plugged is awaited from before the binding update (an event that comes at once is not lost)', () => {
  let store: InstanceStore;
  let neutron: EagerNeutron;
  let images: FakeImageService;
  let nodes: Record<string, { agent: FakeAgentClient; manager: ComputeManager; compute: Endpoint }>;
  let casts: InProcessCasts;
  let netId: string;
  const small = { vcpus: 1, memory_mb: 128, name: 'small' };

  beforeEach(async () => {
    store = new InstanceStore(await openDriverDatabase('sqlite://'));
    neutron = new EagerNeutron();
    netId = neutron.addNetwork({ name: 'berth-net', cidr: '10.77.0.0/24', dns_nameservers: [] }).network.id;
    images = new FakeImageService();
    casts = new InProcessCasts((host, ns) => (ns === 'berth' ? berthEndpoint(host, store, nodes[host]!.manager) : nodes[host]!.compute), CTX);
    nodes = {};
    for (const host of ['n1', 'n2']) {
      neutron.agentHosts.add(`l2-${host}`);
      const agent = new FakeAgentClient();
      agent.snapshotPolls = 0;
      const ports = new InstancePorts({
        neutron,
        plane: { saveNetworkInfo: async () => undefined },
        events: new InstanceEvents(),
        host: `l2-${host}`,
        // Long enough for a slow machine, short enough that a lost event fails the test quickly.
        vifPluggingTimeout: 1,
        vifPluggingIsFatal: true,
        log: silentLogger(),
      });
      const notifier = testNotifier(new FakePublisher(), host);
      const manager = new ComputeManager({ host, node: host, store, agent, notifier, resources, images, ports, peers: casts.peers(host), log: silentLogger() });
      nodes[host] = { agent, manager, compute: computeEndpoint(manager, agent) };
      neutron.nodes.set(`l2-${host}`, nodes[host]!.compute);
    }
  });
  afterEach(() => store.close());

  const on = (uuid: string, host: string | null, vm_state: string, task_state: string | null = null) =>
    instancePrimitive({ uuid, image_id: 'img', flavor: small, host, vm_state, task_state });
  const state = async (uuid: string) => {
    const r = (await store.get(uuid))!;
    return { where: [r.host, r.vm_state], fault: (await store.latestFault(uuid))?.message };
  };
  /**
   * Built on n1 on the network (a new port), or on a port made beforehand; the events come at
   * once unless `later` (a move's test: only the move meets the eager Neutron).
   */
  const build = async (o: { port?: boolean; later?: boolean } = {}) => {
    const i = decodeInstance(instancePrimitive({ image_id: 'img', flavor: small }));
    let request = { network_id: netId as string | null, port_id: null as string | null, address: null };
    if (o.port) {
      const given = await neutron.createPort({ network_id: netId, project_id: 'p', device_id: '', device_owner: '', host: '' });
      request = { network_id: null, port_id: given.id, address: null };
    }
    neutron.mode = o.later ? 'later' : 'at-once';
    await nodes.n1!.manager.buildAndRun(CTX, i, 'img', { requested: [request], securityGroups: [] });
    neutron.mode = 'at-once';
    const s = await state(i.uuid);
    assert.deepEqual(s.where, ['n1', 'active'], s.fault);
    const [port] = [...neutron.ports.values()].filter((p) => p.device_id === i.uuid);
    assert.equal(port!['binding:host_id'], 'l2-n1');
    // The source's container stopped or removed: Neutron's agent took the port DOWN.
    neutron.setStatus(port!.id, 'DOWN');
    return { uuid: i.uuid, portId: port!.id };
  };

  it('build: a new port, and a port the caller made', async () => {
    await build();
    await build({ port: true });
  });

  it('finish_resize on the destination, then finish_revert_resize on the source', async () => {
    const { uuid, portId } = await build({ later: true });
    const migration = migrationPrimitive({ instance_uuid: uuid, host: 'n1', dest: 'n2', migration_type: 'resize' });
    await invoke(nodes.n2!.compute, prepResize(on(uuid, 'n1', 'active'), flavorPrimitive(small), migration, 'n2'));
    await casts.settle();
    assert.deepEqual(casts.failures, []);
    let s = await state(uuid);
    assert.deepEqual(s.where, ['n2', 'resized'], s.fault);
    assert.equal(neutron.ports.get(portId)!['binding:host_id'], 'l2-n2');

    neutron.setStatus(portId, 'DOWN');
    await invoke(nodes.n2!.compute, resizeDecision('revert_resize', on(uuid, 'n2', 'resized'), migration));
    await casts.settle();
    assert.deepEqual(casts.failures, []);
    s = await state(uuid);
    assert.deepEqual(s.where, ['n1', 'active'], s.fault);
    assert.equal(neutron.ports.get(portId)!['binding:host_id'], 'l2-n1');
  });

  it('unshelve of an offloaded instance onto the other node', async () => {
    const { uuid, portId } = await build({ later: true });
    const image = await images.createImage({ name: 'x-shelved', container_format: 'docker', disk_format: 'raw' });
    await invoke(nodes.n1!.compute, shelveInstance(on(uuid, 'n1', 'active', 'shelving'), image.id));
    assert.equal((await store.get(uuid))!.vm_state, 'shelved_offloaded');
    neutron.setStatus(portId, 'DOWN');
    await invoke(nodes.n2!.compute, unshelveInstance(on(uuid, null, 'shelved_offloaded', 'unshelving'), imageDict({ id: image.id }), 'n2'));
    const s = await state(uuid);
    assert.deepEqual(s.where, ['n2', 'active'], s.fault);
    assert.equal(neutron.ports.get(portId)!['binding:host_id'], 'l2-n2');
    assert.deepEqual(
      nodes.n2!.agent.instances.get(uuid)!.spec.vifs?.map((v) => v.portId),
      [portId],
    );
  });

  it('evacuation onto the other node', async () => {
    const { uuid, portId } = await build({ later: true });
    const migration = migrationPrimitive({ instance_uuid: uuid, host: 'n1', dest: null, migration_type: 'evacuation', status: 'accepted' });
    await invoke(nodes.n2!.compute, evacuateInstance(on(uuid, 'n1', 'active'), migration));
    const s = await state(uuid);
    assert.deepEqual(s.where, ['n2', 'active'], s.fault);
    assert.equal(neutron.ports.get(portId)!['binding:host_id'], 'l2-n2');
  });
});
