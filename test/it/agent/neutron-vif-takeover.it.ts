import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { VifSpec } from '../../../agent/client/types.js';
import { NeutronPlumber } from '../../../agent/network/neutron-vifs.js';

const run = promisify(execFile);
const IP = '/usr/sbin/ip';

/**
 * One Neutron port, two containers of its instance on one engine (the instance evacuated to
 * another node while its old container kept running), on this host's kernel: the plug into the
 * new container replaces the old container's pair of the port's tap, a repeated plug keeps it,
 * and only the container whose namespace holds the guest end owns the tap (the old one's removal
 * must leave it alone).
 */
describe("berth-agent: a port's tap taken over by another container of its instance (kernel)", function () {
  this.timeout(60_000);
  const plumber = new NeutronPlumber();
  const portId = randomUUID();
  const vif: VifSpec = {
    portId,
    tap: `tap${portId}`.slice(0, 14),
    bridge: `brq${randomUUID()}`.slice(0, 14),
    mac: 'fa:16:3e:5a:02:09',
    mtu: 1450,
    addresses: [{ address: '10.199.8.23', prefix: 24 }],
    gateway: '10.199.8.1',
    routes: [],
    dns: [],
  };
  const old = `berth-it-${randomUUID().slice(0, 8)}`;
  const moved = `berth-it-${randomUUID().slice(0, 8)}`;
  const path = (ns: string) => `/run/netns/${ns}`;
  const eth0 = async (ns: string) => (await run(IP, ['netns', 'exec', ns, IP, '-o', 'addr', 'show']).then((r) => r.stdout)).includes('inet 10.199.8.23/24');
  const tapIndex = async () => (await readFile(`/sys/class/net/${vif.tap}/ifindex`, 'utf8')).trim();

  before(async () => {
    await run(IP, ['netns', 'add', old]);
    await run(IP, ['netns', 'add', moved]);
  });
  after(async () => {
    await run(IP, ['link', 'del', vif.tap]).catch(() => undefined);
    await run(IP, ['link', 'del', vif.bridge]).catch(() => undefined);
    for (const ns of [old, moved]) await run(IP, ['netns', 'del', ns]).catch(() => undefined);
    plumber.close();
  });

  it("the new container's plug takes the tap; a repeat keeps it; only the namespace with the guest end owns it", async () => {
    await plumber.attach({ uuid: 'u1', netns: path(old), ifname: 'eth0', vif });
    assert.equal(await eth0(old), true);
    assert.equal(await plumber.owns(vif.tap, path(old)), true);
    assert.equal(await plumber.owns(vif.tap, path(moved)), false);

    await plumber.attach({ uuid: 'u1', netns: path(moved), ifname: 'eth0', vif });
    assert.equal(await eth0(moved), true, 'the new container has the port');
    assert.equal(await eth0(old), false, "the old container's pair is gone");
    assert.equal(await plumber.owns(vif.tap, path(moved)), true);
    assert.equal(await plumber.owns(vif.tap, path(old)), false);

    const index = await tapIndex();
    await plumber.attach({ uuid: 'u1', netns: path(moved), ifname: 'eth0', vif });
    assert.equal(await tapIndex(), index, 'a repeated plug keeps the pair');
    assert.equal((await readFile(`/sys/class/net/${vif.tap}/master/uevent`, 'utf8')).includes(`INTERFACE=${vif.bridge}`), true, 'the tap is on the bridge');
  });

  it('a parked pair (made before its container) is owned by the container it was made for, not by another agent on the kernel', async () => {
    await plumber.detach(vif.tap);
    await plumber.prepare('u1', vif);
    assert.equal(await plumber.owns(vif.tap, path(moved)), true);
    const another = new NeutronPlumber('another-host');
    assert.equal(await another.owns(vif.tap, path(moved)), false, "another agent's parked pair is not this one's");
    another.close();
    await plumber.detach(vif.tap);
    assert.equal(await plumber.owns(vif.tap, path(moved)), false, 'no tap: nothing to own');
  });
});
