import { strict as assert } from 'node:assert';
import { silentLogger } from '../../../common/log.js';
import { BerthError } from '../../../common/errors.js';
import { openDriverDatabase } from '../../../driver/db/index.js';
import { ComputeManager } from '../../../driver/compute/manager.js';
import { InstanceStore } from '../../../driver/compute/store.js';
import { InstancePorts } from '../../../driver/compute/instance-ports.js';
import { InstanceEvents } from '../../../driver/compute/vif-events.js';
import { computeEndpoint, UNSUPPORTED_METHODS } from '../../../driver/compute/endpoint.js';
import { decodeInstance } from '../../../driver/objects/instance.js';
import { RpcFailure } from '../../../driver/rpc/failure.js';
import { instancePrimitive } from '../../../tools/lib/nova-requests.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';
import { FakePublisher } from '../../fakes/publisher.js';
import { FakeNeutron } from '../../fakes/neutron.js';
import { TEST_RESOURCES as resources, testNotifier } from '../../support/driver-fixtures.js';

const L2_HOST = 'l2-host';

async function rpcFails(p: Promise<unknown>, className: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof RpcFailure, `expected an RpcFailure, got ${String(err)}`);
    assert.equal(err.className, className);
    return true;
  });
}

describe('compute manager: attach_interface / detach_interface (fake agent, fake Neutron)', () => {
  let agent: FakeAgentClient;
  let store: InstanceStore;
  let neutron: FakeNeutron;
  let publisher: FakePublisher;
  let manager: ComputeManager;
  let caches: Map<string, Array<{ id: string }>>;
  let netId: string;
  let net2: string;
  const ctx = { request_id: 'req-00000000-0000-4000-8000-000000000000', user_id: 'u', project_id: 'p' };
  const newInstance = () => decodeInstance(instancePrimitive({ image_id: 'img', flavor: { vcpus: 1, memory_mb: 64 } }));
  const rpc = () => computeEndpoint(manager, agent).methods;

  const build = (withPorts = true) => {
    publisher = new FakePublisher();
    const notifier = testNotifier(publisher, 'n1');
    const ports = new InstancePorts({
      neutron,
      plane: { saveNetworkInfo: async (_c, uuid, ni) => void caches.set(uuid, ni as Array<{ id: string }>) },
      events: new InstanceEvents(),
      host: L2_HOST,
      vifPluggingTimeout: 0,
      vifPluggingIsFatal: true,
      log: silentLogger(),
    });
    manager = new ComputeManager({ host: 'n1', node: 'n1', store, agent, notifier, resources, ...(withPorts ? { ports } : {}), log: silentLogger() });
  };

  /** An active instance on `netId` (or on its project network with `none`). */
  const active = async (none = false): Promise<string> => {
    const i = newInstance();
    const requested = none ? ('none' as const) : [{ network_id: netId, port_id: null, address: null }];
    await manager.buildAndRun(ctx, i, 'img', { requested, securityGroups: [] });
    assert.equal((await store.get(i.uuid))?.vm_state, 'active', (await store.latestFault(i.uuid))?.message);
    return i.uuid;
  };
  const attach = (uuid: string, a: { network_id?: string; port_id?: string; tag?: string } = {}) =>
    rpc().attach_interface!.handler(ctx, {
      instance: { uuid },
      network_id: a.network_id ?? null,
      port_id: a.port_id ?? null,
      requested_ip: null,
      ...(a.tag ? { tag: a.tag } : {}),
    }) as Promise<{ id: string; network: { id: string } }>;
  const detach = (uuid: string, portId: string) => rpc().detach_interface!.handler(ctx, { instance: { uuid }, port_id: portId }) as Promise<unknown>;

  beforeEach(async () => {
    agent = new FakeAgentClient();
    store = new InstanceStore(await openDriverDatabase('sqlite://'));
    neutron = new FakeNeutron();
    neutron.agentHosts.add(L2_HOST);
    netId = neutron.addNetwork({ name: 'berth-net', cidr: '10.77.0.0/24' }).network.id;
    net2 = neutron.addNetwork({ name: 'berth-net2', cidr: '10.78.0.0/24' }).network.id;
    caches = new Map();
    build();
  });
  afterEach(() => store.close());

  it('is no longer in the list of methods a container node refuses', () => {
    assert.equal((UNSUPPORTED_METHODS as readonly string[]).includes('attach_interface'), false);
    assert.equal((UNSUPPORTED_METHODS as readonly string[]).includes('detach_interface'), false);
  });

  it('attach on a network: a port bound to the L2 host plugged as eth1, the info cache with both VIFs, the VIF returned, interface_attach start/end; detach unplugs, deletes the port, and saves the cache without it', async () => {
    const uuid = await active();
    const vif = await attach(uuid, { network_id: net2 });
    const port = neutron.ports.get(vif.id)!;
    assert.equal(port.network_id, net2);
    assert.equal(port.device_id, uuid);
    assert.equal(port['binding:host_id'], L2_HOST);
    assert.deepEqual(
      agent.attachedVifs.get(uuid)!.map((p) => [p.ifname, p.vif.portId]),
      [
        ['eth0', agent.instances.get(uuid)!.spec.vifs![0]!.portId],
        ['eth1', vif.id],
      ],
    );
    assert.deepEqual(
      caches.get(uuid)!.map((v) => v.id),
      [agent.instances.get(uuid)!.spec.vifs![0]!.portId, vif.id],
    );
    assert.deepEqual(
      publisher.events().filter((e) => e.includes('interface')),
      ['instance.interface_attach.start', 'instance.interface_attach.end'],
    );
    assert.equal((await store.get(uuid))?.task_state, null);

    await detach(uuid, vif.id);
    assert.equal(neutron.ports.has(vif.id), false, 'the port this node made is deleted');
    assert.deepEqual(
      agent.attachedVifs.get(uuid)!.map((p) => p.ifname),
      ['eth0'],
    );
    assert.deepEqual(
      caches.get(uuid)!.map((v) => v.id),
      [agent.instances.get(uuid)!.spec.vifs![0]!.portId],
    );
    assert.deepEqual(
      publisher.events().filter((e) => e.includes('interface_detach')),
      ['instance.interface_detach.start', 'instance.interface_detach.end'],
    );
    // A later delete releases the instance's remaining port only.
    await rpc().terminate_instance!.handler(ctx, { instance: { uuid }, bdms: [] });
    assert.equal(neutron.ports.size, 0);
  });

  it("a caller's port is bound to the instance on attach, and unbound but kept on detach", async () => {
    const uuid = await active();
    const own = await neutron.createPort({ network_id: net2, project_id: 'p', device_id: '', device_owner: '', host: '' });
    const vif = await attach(uuid, { port_id: own.id });
    assert.equal(vif.id, own.id);
    assert.equal(neutron.ports.get(own.id)!.device_id, uuid);
    await detach(uuid, own.id);
    assert.equal(neutron.ports.get(own.id)!.device_id, '', 'kept, unbound');
    assert.equal(neutron.ports.get(own.id)!['binding:host_id'], '');
  });

  it('an instance booted with --nic none (project network on eth0) gets the port as eth1; its delete releases the port', async () => {
    const uuid = await active(true);
    const vif = await attach(uuid, { network_id: netId });
    assert.deepEqual(
      agent.attachedVifs.get(uuid)!.map((p) => p.ifname),
      ['eth1'],
    );
    assert.equal(neutron.ports.get(vif.id)!.device_id, uuid);
    await rpc().terminate_instance!.handler(ctx, { instance: { uuid }, bdms: [] });
    assert.equal(neutron.ports.size, 0);
  });

  it('a plug the agent refuses releases the port, fails with InterfaceAttachFailed, records interface_attach.error, and leaves the instance active', async () => {
    const uuid = await active();
    const before = neutron.ports.size;
    agent.failNext('attachVif', new BerthError('RUNTIME_ERROR', 'RTNETLINK answers: File exists', { status: 500 }));
    await rpcFails(attach(uuid, { network_id: net2 }), 'InterfaceAttachFailed');
    assert.equal(neutron.ports.size, before);
    const row = await store.get(uuid);
    assert.equal(row?.vm_state, 'active');
    assert.equal(row?.task_state, null);
    assert.ok(publisher.events().includes('instance.interface_attach.error'));
    assert.equal(caches.get(uuid)!.length, 1);
  });

  it('refuses: a port not attached (PortNotFound), a tag, a node without Neutron, an instance in a state nova-api would not pass', async () => {
    const uuid = await active();
    await rpcFails(detach(uuid, '00000000-0000-4000-8000-00000000beef'), 'PortNotFound');
    await rpcFails(attach(uuid, { network_id: net2, tag: 'nic1' }), 'NetworkInterfaceTaggedAttachNotSupported');
    const row = (await store.get(uuid))!;
    await store.update(row, { vm_state: 'suspended' });
    await rpcFails(attach(uuid, { network_id: net2 }), 'InstanceInvalidState');
    build(false);
    await rpcFails(attach(uuid, { network_id: net2 }), 'AttachInterfaceNotSupported');
  });
});
