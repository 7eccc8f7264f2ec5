import assert from 'node:assert/strict';
import { BerthError } from '../../../common/errors.js';
import { guestNameservers } from '../../../agent/network/resolv.js';
import { hostLinkName, VethPlumber, type VethAttachment } from '../../../agent/network/veth.js';

const good: VethAttachment = {
  uuid: '6f1c2b9e-1d2c-4a7b-9b1e-0c5d3f2a8e41',
  netns: '/var/run/docker/netns/0123456789ab',
  bridge: 'br-0123456789ab',
  ipv4: '172.30.1.4',
  prefix: 24,
  gateway: '172.30.1.1',
  macAddress: '02:42:ac:1e:01:04',
};

describe('agent veth plumbing: what reaches a command line', () => {
  it("names the host end within the kernel's 15 characters, the same for the same uuid", () => {
    const name = hostLinkName(good.uuid);
    assert.match(name, /^vb[0-9a-f]{12}$/);
    assert.equal(hostLinkName(good.uuid), name);
    assert.notEqual(hostLinkName('another'), name);
  });

  for (const [field, value] of [
    ['bridge', 'br0;reboot'],
    ['bridge', 'a-bridge-name-too-long'],
    ['ipv4', '172.30.1.4 dev lo'],
    ['ipv4', '300.1.1.1'],
    ['gateway', '$(id)'],
    ['macAddress', "02:42:ac:1e:01:04' x"],
    ['netns', '4242'],
    ['netns', '/var/run/docker/netns/x; reboot'],
    ['netns', '/var/run/docker/netns/../../../proc/1/ns/net'],
    ['netns', ''],
    ['prefix', 33],
    ['prefix', 0],
  ] as const) {
    it(`refuses ${field} ${JSON.stringify(value)} before running anything`, async () => {
      const plumber = new VethPlumber();
      try {
        await assert.rejects(
          plumber.attach({ ...good, [field]: value }),
          (err: unknown) => err instanceof BerthError && err.code === 'RUNTIME_ERROR' && err.message.includes(JSON.stringify(value)),
        );
      } finally {
        plumber.close();
      }
    });
  }
});

describe('agent: the nameservers a plugged-in guest uses', () => {
  it("are the host's, without loopback or IPv6 ones, else Docker's fallback", () => {
    assert.deepEqual(
      guestNameservers(
        '# generated\nnameserver 10.0.0.2\nnameserver 127.0.0.53\nnameserver ::1\nnameserver fd00::1\n  nameserver 192.0.2.53 \nsearch example.org\n',
      ),
      ['10.0.0.2', '192.0.2.53'],
    );
    assert.deepEqual(guestNameservers('nameserver 127.0.0.53\noptions edns0\n'), ['8.8.8.8', '8.8.4.4']);
    assert.deepEqual(guestNameservers(''), ['8.8.8.8', '8.8.4.4']);
  });
});
