import { strict as assert } from 'node:assert';
import { silentLogger } from '../../../common/log.js';
import { openDriverDatabase } from '../../../driver/db/index.js';
import { ComputeManager } from '../../../driver/compute/manager.js';
import { InstanceStore } from '../../../driver/compute/store.js';
import { Notifier } from '../../../driver/notify/notifier.js';
import { decodeInstance } from '../../../driver/objects/instance.js';
import { instancePrimitive } from '../../../tools/lib/nova-requests.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';
import { FakePublisher } from '../../fakes/publisher.js';
import { testResources } from '../../support/driver-fixtures.js';

const VIF_ID = '5f0c3a2e-9b1d-4c6e-8a7f-112233445566';
/** One VIF as nova's network model writes it, on a bridge the caller made. */
const callerVif = (over: Record<string, unknown> = {}) => ({
  id: VIF_ID,
  address: 'FA:16:3E:00:00:01',
  type: 'bridge',
  network: {
    id: 'net-1',
    bridge: 'br-caller',
    label: 'caller-net',
    subnets: [
      {
        cidr: '192.168.50.0/24',
        version: 4,
        gateway: { address: '192.168.50.1', type: 'gateway', version: 4, meta: {} },
        ips: [{ address: '192.168.50.10', type: 'fixed', version: 4, meta: {}, floating_ips: [] }],
        dns: [{ address: '192.168.50.2', type: 'dns', version: 4, meta: {} }],
        routes: [{ cidr: '10.0.0.0/8', gateway: { address: '192.168.50.254' }, interface: null, meta: {} }],
        meta: {},
      },
      { cidr: 'fd00::/64', version: 6, gateway: null, ips: [{ address: 'fd00::10', version: 6 }], dns: [], routes: [], meta: {} },
    ],
    meta: { mtu: 1400 },
  },
  ...over,
});

describe('standalone mode: VIFs the caller gives in network_info', () => {
  let agent: FakeAgentClient;
  let store: InstanceStore;
  let manager: ComputeManager;
  const ctx = { request_id: 'req-00000000-0000-4000-8000-000000000000' };

  beforeEach(async () => {
    agent = new FakeAgentClient();
    store = new InstanceStore(await openDriverDatabase('sqlite://'));
    const notifier = new Notifier(new FakePublisher(), {
      exchange: 'nova',
      host: 'n1',
      format: 'unversioned',
      driver: 'messagingv2',
      versionedTopic: 'versioned_notifications',
      legacyTopic: 'notifications',
      rabbit: { amqp_durable_queues: false, amqp_auto_delete: false, rabbit_ha_queues: false, rabbit_quorum_queue: false, rabbit_transient_queues_ttl: 1800 },
      log: silentLogger(),
    });
    const resources = testResources({ memory_mb: 1024, reserved_host_memory_mb: 0 });
    manager = new ComputeManager({ host: 'n1', node: 'n1', store, agent, notifier, resources, log: silentLogger() });
  });
  afterEach(() => store.close());

  const build = async (networkInfo: unknown[]) => {
    const i = decodeInstance(instancePrimitive({ image_id: 'img', flavor: { vcpus: 1, memory_mb: 64 }, network_info: networkInfo }));
    await manager.buildAndRun(ctx, i, 'img');
    assert.equal((await store.get(i.uuid))?.vm_state, 'active', (await store.latestFault(i.uuid))?.message);
    return agent.instances.get(i.uuid)!;
  };

  it("plugs a bridge VIF into the bridge it names, with its MAC, IPv4 address and prefix, gateway, routes, DNS and MTU; the instance's address is the VIF's", async () => {
    const inst = await build([callerVif()]);
    assert.deepEqual(inst.spec.vifs, [
      {
        portId: VIF_ID,
        tap: `tap${VIF_ID}`.slice(0, 14),
        bridge: 'br-caller',
        mac: 'fa:16:3e:00:00:01',
        mtu: 1400,
        addresses: [{ address: '192.168.50.10', prefix: 24 }],
        gateway: '192.168.50.1',
        routes: [{ destination: '10.0.0.0/8', nexthop: '192.168.50.254' }],
        dns: ['192.168.50.2'],
      },
    ]);
    assert.equal(inst.ip_address, '192.168.50.10');
  });

  it('keeps the project network when no VIF is given, or none of type bridge with a bridge name; a VIF id that is not a uuid gets a uuid derived from it', async () => {
    assert.equal((await build([])).spec.vifs, undefined);
    assert.equal((await build([callerVif({ type: 'ovs' })])).spec.vifs, undefined);
    const noBridge = callerVif();
    noBridge.network = { ...noBridge.network, bridge: '' };
    assert.equal((await build([noBridge])).spec.vifs, undefined);
    const odd = await build([callerVif({ id: 'vif-A' })]);
    assert.match(odd.spec.vifs![0]!.portId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(odd.spec.vifs![0]!.tap, `tap${odd.spec.vifs![0]!.portId}`.slice(0, 14));
  });
});
