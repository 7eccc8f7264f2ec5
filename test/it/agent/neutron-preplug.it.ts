import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readlink, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { VifSpec } from '../../../agent/client/types.js';
import { NeutronPlumber, parkedName } from '../../../agent/network/neutron-vifs.js';
import { DockerRuntime } from '../../../agent/runtime/docker.js';
import { API_VERSION, DOCKER_URL } from './docker-helpers.js';

const run = promisify(execFile);
const IP = '/usr/sbin/ip';

const exists = (dev: string) =>
  stat(`/sys/class/net/${dev}`).then(
    () => true,
    () => false,
  );

function newVif(): VifSpec {
  const portId = randomUUID();
  return {
    portId,
    tap: `tap${portId}`.slice(0, 14),
    bridge: `brq${randomUUID()}`.slice(0, 14),
    mac: 'fa:16:3e:5a:02:07',
    mtu: 1450,
    addresses: [{ address: '10.199.9.23', prefix: 24 }],
    gateway: '10.199.9.1',
    routes: [],
    dns: [],
  };
}

/**
 * A Neutron VIF's pair made before its guest exists, as nova's os-vif plugs a VM's tap before
 * the guest runs (so Neutron's agent wires the port while the container is made), on this host's
 * kernel: the tap on the bridge with the guest end parked in the host's namespace, moved into the
 * guest's namespace by the plug; and a container create that fails leaves no pair behind.
 */
describe('berth-agent: Neutron taps made before the container starts (kernel, dockerd)', function () {
  this.timeout(120_000);
  const plumber = new NeutronPlumber();
  const made: VifSpec[] = [];
  const netns = `berth-it-${randomUUID().slice(0, 8)}`;

  after(async () => {
    for (const v of made) {
      await run(IP, ['link', 'del', v.tap]).catch(() => undefined);
      await run(IP, ['link', 'del', v.bridge]).catch(() => undefined);
    }
    await run(IP, ['netns', 'del', netns]).catch(() => undefined);
    plumber.close();
  });

  it('prepare puts the tap on its bridge, up, with the guest end parked under its MAC; the plug moves it in as eth0 with the address; detach removes the pair', async () => {
    const vif = newVif();
    made.push(vif);
    await plumber.prepare('u-prep', vif);
    assert.equal((await readlink(`/sys/class/net/${vif.tap}/master`)).endsWith(`/${vif.bridge}`), true, 'the tap is on the bridge');
    const { stdout: tap } = await run(IP, ['-o', 'link', 'show', vif.tap]);
    assert.match(tap, /[<,]UP[,>]/);
    const { stdout: parked } = await run(IP, ['-o', 'link', 'show', parkedName(vif.tap)]);
    assert.match(parked, /link\/ether fa:16:3e:5a:02:07/);
    await plumber.prepare('u-prep', vif);

    await run(IP, ['netns', 'add', netns]);
    await plumber.attach({ uuid: 'u-prep', netns: `/run/netns/${netns}`, ifname: 'eth0', vif });
    assert.equal(await exists(parkedName(vif.tap)), false, 'nothing is left parked on the host');
    const { stdout: guest } = await run(IP, ['netns', 'exec', netns, IP, '-o', 'addr', 'show', 'eth0']);
    assert.match(guest, /inet 10\.199\.9\.23\/24/);
    const { stdout: mac } = await run(IP, ['netns', 'exec', netns, 'cat', '/sys/class/net/eth0/address']);
    assert.match(mac, /fa:16:3e:5a:02:07/);
    const { stdout: routes } = await run(IP, ['netns', 'exec', netns, IP, 'route']);
    assert.match(routes, /^default via 10\.199\.9\.1 dev eth0/m);
    await plumber.attach({ uuid: 'u-prep', netns: `/run/netns/${netns}`, ifname: 'eth0', vif });

    await plumber.detach(vif.tap);
    assert.equal(await exists(vif.tap), false);
    const { stdout: after } = await run(IP, ['netns', 'exec', netns, IP, '-o', 'link']);
    assert.doesNotMatch(after, /eth0/);
  });

  it('a pair made and never plugged (its create failed) is removed whole by detach', async () => {
    const vif = newVif();
    made.push(vif);
    await plumber.prepare('u-fail', vif);
    assert.equal(await exists(parkedName(vif.tap)), true);
    await plumber.detach(vif.tap);
    assert.equal(await exists(vif.tap), false);
    assert.equal(await exists(parkedName(vif.tap)), false);
  });

  it('a container create on a Neutron VIF that the engine refuses leaves no tap and no parked end', async () => {
    const runtime = new DockerRuntime({ hostUrl: DOCKER_URL, apiVersion: API_VERSION });
    const vif = newVif();
    made.push(vif);
    const uuid = randomUUID();
    // An image the engine lacks: refused after the taps were begun.
    await assert.rejects(
      runtime.createContainer({
        uuid,
        imageId: `sha256:${'0'.repeat(64)}`,
        glanceImageId: randomUUID(),
        projectId: 'berth-it-preplug',
        hostname: 'preplug',
        flavor: { vcpus: 1, memory_mb: 64, root_gb: 1, swap: 0, extra_specs: {} },
        vifs: [vif],
      }),
      (err: unknown) => (err as { code?: string }).code === 'IMAGE_NOT_FOUND',
    );
    assert.equal(await exists(vif.tap), false, 'no tap');
    assert.equal(await exists(parkedName(vif.tap)), false, 'no parked guest end');
    assert.equal(await runtime.inspect(uuid), null, 'no container');
  });
});
