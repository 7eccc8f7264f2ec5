import { strict as assert } from 'node:assert';
import { silentLogger } from '../../../common/log.js';
import { openDriverDatabase } from '../../../driver/db/index.js';
import { ComputeManager } from '../../../driver/compute/manager.js';
import { InstanceStore } from '../../../driver/compute/store.js';
import { InstancePorts } from '../../../driver/compute/instance-ports.js';
import { InstanceEvents } from '../../../driver/compute/vif-events.js';
import { Notifier } from '../../../driver/notify/notifier.js';
import { decodeInstance } from '../../../driver/objects/instance.js';
import { computeEndpoint } from '../../../driver/compute/endpoint.js';
import { instancePrimitive } from '../../../tools/lib/nova-requests.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';
import { FakePublisher } from '../../fakes/publisher.js';
import { FakeNeutron } from '../../fakes/neutron.js';
import { TEST_RABBIT as rabbit, TEST_RESOURCES as resources } from '../../support/driver-fixtures.js';

const L2_HOST = 'l2-host';

/** Polls (bounded: 2 s) until `ok` holds. */
async function waitFor(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(ok(), 'condition not reached within 2 s');
}

describe('compute manager with Neutron ports (fake agent, fake Neutron)', () => {
  let agent: FakeAgentClient;
  let store: InstanceStore;
  let neutron: FakeNeutron;
  let manager: ComputeManager;
  let caches: Map<string, unknown[]>;
  let netId: string;
  const ctx = { request_id: 'req-00000000-0000-4000-8000-000000000000', user_id: 'u', project_id: 'p' };
  const newInstance = () => decodeInstance(instancePrimitive({ image_id: 'img', flavor: { vcpus: 1, memory_mb: 64 } }));
  const onNet = () => ({ requested: [{ network_id: netId, port_id: null, address: null }], securityGroups: [] });

  const build = (opts: { timeout?: number; fatal?: boolean } = {}) => {
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
      plane: { saveNetworkInfo: async (_c, uuid, ni) => void caches.set(uuid, ni) },
      events: new InstanceEvents(),
      host: L2_HOST,
      vifPluggingTimeout: opts.timeout ?? 5,
      vifPluggingIsFatal: opts.fatal ?? true,
      log: silentLogger(),
    });
    manager = new ComputeManager({ host: 'n1', node: 'n1', store, agent, notifier, resources, ports, log: silentLogger() });
  };

  /** Plays Neutron and nova-api: once the agent created the instance, each port goes ACTIVE and its event is relayed. */
  const relayPlugged = (uuid: string, status = 'completed') => {
    const timer = setInterval(() => {
      if (!agent.instances.has(uuid)) return;
      clearInterval(timer);
      const events = [...neutron.ports.values()]
        .filter((p) => p.device_id === uuid)
        .map((p) => ({ name: 'network-vif-plugged', tag: p.id, status, instance_uuid: uuid }));
      for (const e of events) neutron.setStatus(e.tag, 'ACTIVE');
      void computeEndpoint(manager, agent).methods.external_instance_event!.handler(ctx, { instances: [], events });
    }, 5);
    return () => clearInterval(timer);
  };

  beforeEach(async () => {
    agent = new FakeAgentClient();
    store = new InstanceStore(await openDriverDatabase('sqlite://'));
    neutron = new FakeNeutron();
    neutron.agentHosts.add(L2_HOST);
    netId = neutron.addNetwork({ name: 'berth-net', cidr: '10.77.0.0/24', dns_nameservers: ['10.77.0.2'] }).network.id;
    caches = new Map();
    build();
  });
  afterEach(() => store.close());

  it('allocates a port bound to the L2 host, hands its plug to the agent, waits for network-vif-plugged, saves network_info, goes active with the port address', async () => {
    const i = newInstance();
    const stop = relayPlugged(i.uuid);
    await manager.buildAndRun(ctx, i, 'img', onNet());
    stop();
    const row = await store.get(i.uuid);
    assert.equal(row?.vm_state, 'active', (await store.latestFault(i.uuid))?.message);
    const [port] = [...neutron.ports.values()];
    assert.equal(port!['binding:host_id'], L2_HOST);
    assert.equal(port!.device_id, i.uuid);
    const spec = agent.instances.get(i.uuid)!.spec;
    assert.equal(spec.vifs?.length, 1);
    assert.equal(spec.vifs![0]!.portId, port!.id);
    assert.equal(spec.vifs![0]!.tap, `tap${port!.id}`.slice(0, 14));
    assert.deepEqual(spec.vifs![0]!.dns, ['10.77.0.2']);
    assert.equal(row?.ip_address, port!.fixed_ips[0]!.ip_address);
    const ni = caches.get(i.uuid) as Array<{ id: string; network: { subnets: Array<{ ips: Array<{ address: string }> }> } }>;
    assert.equal(ni[0]!.id, port!.id);
    assert.equal(ni[0]!.network.subnets[0]!.ips[0]!.address, port!.fixed_ips[0]!.ip_address);
    assert.equal('neutron' in spec, false, 'the record of the networking stays with the driver');
  });

  it('a build whose network-vif-plugged never comes fails after vif_plugging_timeout (fatal), with no container and no port left', async () => {
    build({ timeout: 0.3, fatal: true });
    const i = newInstance();
    await manager.buildAndRun(ctx, i, 'img', onNet());
    const row = await store.get(i.uuid);
    assert.equal(row?.vm_state, 'error');
    const fault = await store.latestFault(i.uuid);
    assert.match(fault!.message, /Virtual Interface creation failed/);
    assert.equal(fault!.details, 'VirtualInterfaceCreateException');
    assert.equal(agent.instances.has(i.uuid), false);
    assert.equal(neutron.ports.size, 0);
  });

  it('with vif_plugging_is_fatal = false a missing event is logged and the build goes active', async () => {
    build({ timeout: 0.2, fatal: false });
    const i = newInstance();
    await manager.buildAndRun(ctx, i, 'img', onNet());
    assert.equal((await store.get(i.uuid))?.vm_state, 'active');
  });

  it('a failed network-vif-plugged event fails the build', async () => {
    const i = newInstance();
    const stop = relayPlugged(i.uuid, 'failed');
    await manager.buildAndRun(ctx, i, 'img', onNet());
    stop();
    assert.equal((await store.get(i.uuid))?.vm_state, 'error');
    assert.match((await store.latestFault(i.uuid))!.message, /failed: network-vif-plugged-/);
  });

  it('a port Neutron cannot bind to this host fails the build with a fault naming it, and leaves no port', async () => {
    neutron.agentHosts.clear();
    const i = newInstance();
    await manager.buildAndRun(ctx, i, 'img', onNet());
    assert.equal((await store.get(i.uuid))?.vm_state, 'error');
    const fault = await store.latestFault(i.uuid);
    assert.equal(fault!.details, 'PortBindingFailed');
    assert.match(fault!.message, /binding_failed|no live L2 agent/);
    assert.equal(neutron.ports.size, 0);
    assert.equal(agent.instances.has(i.uuid), false);
  });

  it('delete removes the container and deletes the port nova made; a port the user gave is unbound and kept', async () => {
    const given = await neutron.createPort({ network_id: netId, project_id: 'p', device_id: '', device_owner: '', host: '' });
    const i = newInstance();
    const stop = relayPlugged(i.uuid);
    await manager.buildAndRun(ctx, i, 'img', {
      requested: [
        { network_id: netId, port_id: null, address: null },
        { network_id: null, port_id: given.id, address: null },
      ],
      securityGroups: [],
    });
    stop();
    assert.equal((await store.get(i.uuid))?.vm_state, 'active', (await store.latestFault(i.uuid))?.message);
    assert.equal(agent.instances.get(i.uuid)!.spec.vifs?.length, 2);
    await manager.terminate(ctx, i.uuid);
    assert.deepEqual([...neutron.ports.keys()], [given.id]);
    assert.equal(neutron.ports.get(given.id)!.device_id, '');
    assert.equal(agent.instances.has(i.uuid), false);
  });

  it('--nic none keeps the project network: no port, no VIFs; auto is refused with a fault', async () => {
    const a = newInstance();
    await manager.buildAndRun(ctx, a, 'img', { requested: 'none', securityGroups: [] });
    assert.equal((await store.get(a.uuid))?.vm_state, 'active');
    assert.equal(agent.instances.get(a.uuid)!.spec.vifs, undefined);
    assert.equal(neutron.ports.size, 0);
    const b = newInstance();
    await manager.buildAndRun(ctx, b, 'img', { requested: 'auto', securityGroups: [] });
    assert.equal((await store.get(b.uuid))?.vm_state, 'error');
    assert.equal((await store.latestFault(b.uuid))!.details, 'UnableToAutoAllocateNetwork');
  });

  it('network-changed and network-vif-deleted refresh the saved network_info from Neutron; a plugged event nobody awaits is dropped', async () => {
    const i = newInstance();
    const stop = relayPlugged(i.uuid);
    await manager.buildAndRun(ctx, i, 'img', onNet());
    stop();
    const [port] = [...neutron.ports.values()];
    const ep = computeEndpoint(manager, agent);
    const send = (name: string) =>
      ep.methods.external_instance_event!.handler(ctx, { instances: [], events: [{ name, tag: port!.id, status: 'completed', instance_uuid: i.uuid }] });
    const cachedAddress = () =>
      (caches.get(i.uuid) as Array<{ network: { subnets: Array<{ ips: Array<{ address: string }> }> } }>)[0]?.network.subnets[0]?.ips[0]?.address;
    port!.fixed_ips = [{ subnet_id: port!.fixed_ips[0]!.subnet_id, ip_address: '10.77.0.200' }];
    await send('network-changed');
    await waitFor(() => cachedAddress() === '10.77.0.200');
    neutron.ports.delete(port!.id);
    await send('network-vif-deleted');
    await waitFor(() => caches.get(i.uuid)?.length === 0);
    const row = await store.get(i.uuid);
    assert.deepEqual((JSON.parse(row!.spec) as { neutron: { network_info: unknown[] } }).neutron.network_info, []);
    await send('network-vif-plugged');
    assert.equal(row?.vm_state, 'active');
  });

  it('network-changed after a floating IP is associated saves it in the info cache (server show lists it); after it is disassociated, no more', async () => {
    const i = newInstance();
    const stop = relayPlugged(i.uuid);
    await manager.buildAndRun(ctx, i, 'img', onNet());
    stop();
    const [port] = [...neutron.ports.values()];
    const changed = () =>
      computeEndpoint(manager, agent).methods.external_instance_event!.handler(ctx, {
        instances: [],
        events: [{ name: 'network-changed', tag: port!.id, status: 'completed', instance_uuid: i.uuid }],
      });
    const floating = () =>
      (caches.get(i.uuid) as Array<{ network: { subnets: Array<{ ips: Array<{ floating_ips: Array<{ address: string; type: string }> }> }> } }>)[0]?.network
        .subnets[0]?.ips[0]?.floating_ips;
    assert.deepEqual(floating(), []);
    const fip = neutron.associateFloatingIp(port!.id, '172.24.4.30');
    await changed();
    await waitFor(() => floating()?.[0]?.address === '172.24.4.30');
    assert.equal(floating()![0]!.type, 'floating');
    neutron.disassociateFloatingIp(fip);
    await changed();
    await waitFor(() => floating()?.length === 0);
  });

  it('a repeated build (a restart mid-build) reuses the ports the instance has, making no second set', async () => {
    const i = newInstance();
    await new InstancePorts({
      neutron,
      plane: { saveNetworkInfo: async () => undefined },
      events: new InstanceEvents(),
      host: L2_HOST,
      vifPluggingTimeout: 0,
      vifPluggingIsFatal: true,
      log: silentLogger(),
    }).allocate({ uuid: i.uuid, project_id: 'p', availability_zone: null, security_groups: [] }, onNet().requested);
    const stop = relayPlugged(i.uuid);
    await manager.buildAndRun(ctx, i, 'img', onNet());
    stop();
    assert.equal((await store.get(i.uuid))?.vm_state, 'active');
    assert.equal(neutron.ports.size, 1);
  });
});
