import assert from 'node:assert/strict';
import sinon from 'sinon';
import type { DockerApi } from '../../../agent/runtime/docker-api.js';
import { toContainerInfo, type DockerContainer } from '../../../agent/runtime/docker-inspect.js';
import { NeutronPlumber, type VifAttachment } from '../../../agent/network/neutron-vifs.js';
import type { VifSpec } from '../../../agent/client/types.js';
import type { BridgeInfo, DockerNetworks } from '../../../agent/network/docker-networks.js';
import { DockerPlugs } from '../../../agent/network/docker-plugs.js';
import { LABEL_INSTANCE, LABEL_IPV4, LABEL_MAC, LABEL_NETWORK, LABEL_PROJECT, LABEL_VIFS, type ContainerSpec } from '../../../agent/runtime/types.js';
import { createBody } from '../../../agent/runtime/docker-create-body.js';
import { VethPlumber, type VethAttachment } from '../../../agent/network/veth.js';
import { BerthError } from '../../../common/errors.js';

const UUID = '6f1c2b9e-1d2c-4a7b-9b1e-0c5d3f2a8e41';
const SANDBOX = '/var/run/docker/netns/61dd1bc624a1';

/** A running container the agent attaches, as the engine's inspect answers for it. */
const container = (labels: Record<string, string> = {}): DockerContainer => ({
  State: { Status: 'running', Running: true, Pid: 1 },
  NetworkSettings: { SandboxKey: SANDBOX },
  Config: {
    Labels: {
      [LABEL_INSTANCE]: UUID,
      [LABEL_PROJECT]: 'project-a',
      [LABEL_NETWORK]: 'berth-project-a',
      [LABEL_IPV4]: '172.30.1.4',
      [LABEL_MAC]: '02:42:ac:1e:01:04',
      ...labels,
    },
  },
});

describe('agent DockerPlugs: which namespace, which network', () => {
  let attach: sinon.SinonStub<[VethAttachment], Promise<void>>;
  const bridges: Record<string, BridgeInfo> = {
    'berth-project-a': { bridge: 'br-0123456789ab', prefix: 24, gateway: '172.30.1.1', projectId: 'project-a' },
    'berth-project-b': { bridge: 'br-ba9876543210', prefix: 24, gateway: '172.30.2.1', projectId: 'project-b' },
  };
  const networks = { bridge: async (name: string) => bridges[name]! } as unknown as DockerNetworks;
  const plugsFor = (c: DockerContainer) => new DockerPlugs({} as DockerApi, networks, async () => c, undefined);

  beforeEach(() => {
    attach = sinon.stub(VethPlumber.prototype, 'attach').resolves();
    sinon.stub(VethPlumber.prototype, 'attached').resolves(false);
  });
  afterEach(() => sinon.restore());

  it('plugs into the namespace the engine keeps for the container (its sandbox key), not into the namespace of whatever process has its pid now', async () => {
    await plugsFor(container()).plug(UUID);
    assert.equal(attach.callCount, 1);
    const a = attach.firstCall.args[0];
    assert.equal(a.netns, SANDBOX);
    assert.equal('pid' in a, false);
    assert.equal(a.bridge, 'br-0123456789ab');
  });

  it('plugs nothing into a container the engine gives no sandbox', async () => {
    await plugsFor({ ...container(), NetworkSettings: {} }).plug(UUID);
    assert.equal(attach.callCount, 0);
  });

  it('refuses to plug a container into a network of another project than the one Berth labelled it with', async () => {
    await assert.rejects(
      plugsFor(container({ [LABEL_NETWORK]: 'berth-project-b' })).plug(UUID),
      (e: unknown) => e instanceof BerthError && e.code === 'RUNTIME_ERROR' && /not its project's/.test(e.message),
    );
    assert.equal(attach.callCount, 0);
  });
});

describe('agent DockerPlugs: Neutron VIFs', () => {
  const vif = (n: number): VifSpec => ({
    portId: `3f1e2d4c-5b6a-4978-8a9b-0c1d2e3f4a5${n}`,
    tap: `tap3f1e2d4c-5${n}`,
    bridge: 'brq9a8b7c6d-5e',
    mac: `fa:16:3e:12:34:5${n}`,
    mtu: 1450,
    addresses: [{ address: `10.77.0.2${n}`, prefix: 24 }],
    gateway: '10.77.0.1',
    routes: [],
    dns: [],
  });
  const onNeutron = (vifs: VifSpec[]): DockerContainer => ({
    State: { Status: 'running', Running: true, Pid: 1 },
    NetworkSettings: { SandboxKey: SANDBOX },
    Config: { Labels: { [LABEL_INSTANCE]: UUID, [LABEL_PROJECT]: 'project-a', [LABEL_VIFS]: JSON.stringify(vifs) } },
  });
  let neutron: sinon.SinonStub<[VifAttachment], Promise<void>>;
  let veth: sinon.SinonStub<[VethAttachment], Promise<void>>;
  beforeEach(() => {
    neutron = sinon.stub(NeutronPlumber.prototype, 'attach').resolves();
    veth = sinon.stub(VethPlumber.prototype, 'attach').resolves();
  });
  afterEach(() => sinon.restore());
  const plugsFor = (c: DockerContainer) => new DockerPlugs({} as DockerApi, {} as DockerNetworks, async () => c, undefined);

  it('plugs every VIF of the label into the sandbox, eth0, eth1 ... in order, and no project network', async () => {
    await plugsFor(onNeutron([vif(1), vif(2)])).plug(UUID);
    assert.deepEqual(
      neutron.getCalls().map((c) => [c.args[0].ifname, c.args[0].vif.tap, c.args[0].netns]),
      [
        ['eth0', 'tap3f1e2d4c-51', SANDBOX],
        ['eth1', 'tap3f1e2d4c-52', SANDBOX],
      ],
    );
    assert.equal(veth.callCount, 0);
  });

  it('plugs again on every start (a new start is a new namespace); nothing into a stopped container', async () => {
    const c = onNeutron([vif(1)]);
    const plugs = plugsFor(c);
    await plugs.plug(UUID);
    c.NetworkSettings = { SandboxKey: '/var/run/docker/netns/aaaaaaaaaaaa' };
    await plugs.plug(UUID);
    assert.deepEqual(
      neutron.getCalls().map((x) => x.args[0].netns),
      [SANDBOX, '/var/run/docker/netns/aaaaaaaaaaaa'],
    );
    await plugsFor({ ...c, State: { Status: 'exited', Running: false } }).plug(UUID);
    assert.equal(neutron.callCount, 2);
  });

  it('reports the first VIF address as the instance address', () => {
    assert.equal(toContainerInfo(onNeutron([vif(3), vif(4)])).ipAddress, '10.77.0.23');
  });
});

describe('agent create body: an instance on Neutron VIFs', () => {
  const spec = (vifs?: VifSpec[]): ContainerSpec => ({
    uuid: UUID,
    imageId: 'sha256:abc',
    glanceImageId: 'img',
    projectId: 'project-a',
    hostname: 'web-1',
    flavor: { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} },
    ...(vifs ? { vifs } : {}),
  });
  const VIF: VifSpec = {
    portId: '3f1e2d4c-5b6a-4978-8a9b-0c1d2e3f4a5b',
    tap: 'tap3f1e2d4c-5b',
    bridge: 'brq9a8b7c6d-5e',
    mac: 'fa:16:3e:12:34:56',
    mtu: 1450,
    addresses: [{ address: '10.77.0.23', prefix: 24 }],
    gateway: '10.77.0.1',
    routes: [],
    dns: [],
  };

  it('is on no engine network, carries its VIFs in a label, and its host name resolves to its Neutron address', () => {
    const body = createBody(spec([VIF]), 'no', 'node-1', 'agent') as { Labels: Record<string, string>; HostConfig: Record<string, unknown> };
    assert.equal(body.HostConfig.NetworkMode, 'none');
    assert.deepEqual(JSON.parse(body.Labels[LABEL_VIFS]!), [VIF]);
    assert.deepEqual(body.HostConfig.ExtraHosts, ['web-1:10.77.0.23']);
  });

  it("names the subnets' DNS servers (each once, in order) as the guest's resolvers, and none when the subnets have none", () => {
    const two = createBody(
      spec([
        { ...VIF, dns: ['10.77.0.2', '10.77.0.3'] },
        { ...VIF, tap: 'tap00000000-00', dns: ['10.77.0.3', '10.88.0.2'] },
      ]),
      'no',
      undefined,
      'agent',
    ) as {
      HostConfig: Record<string, unknown>;
    };
    assert.deepEqual(two.HostConfig.Dns, ['10.77.0.2', '10.77.0.3', '10.88.0.2']);
    const none = createBody(spec([VIF]), 'no', undefined, 'agent') as { HostConfig: Record<string, unknown> };
    assert.equal('Dns' in none.HostConfig, false);
  });

  it('lets no image bring a VIF label of its own: an inherited one is blanked', () => {
    const body = createBody(spec(), 'no', 'node-1', 'agent', [LABEL_VIFS]) as { Labels: Record<string, string> };
    assert.equal(body.Labels[LABEL_VIFS], '');
  });
});
