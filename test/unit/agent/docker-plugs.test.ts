import assert from 'node:assert/strict';
import sinon from 'sinon';
import type { DockerApi } from '../../../agent/runtime/docker-api.js';
import type { DockerContainer } from '../../../agent/runtime/docker-inspect.js';
import type { BridgeInfo, DockerNetworks } from '../../../agent/network/docker-networks.js';
import { DockerPlugs } from '../../../agent/network/docker-plugs.js';
import { LABEL_INSTANCE, LABEL_IPV4, LABEL_MAC, LABEL_NETWORK, LABEL_PROJECT } from '../../../agent/runtime/types.js';
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
