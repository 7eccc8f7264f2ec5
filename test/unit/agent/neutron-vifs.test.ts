import assert from 'node:assert/strict';
import { BerthError } from '../../../common/errors.js';
import { NeutronPlumber, type VifAttachment } from '../../../agent/network/neutron-vifs.js';

const good: VifAttachment = {
  uuid: 'u1',
  netns: '/var/run/docker/netns/abc123',
  ifname: 'eth0',
  vif: {
    portId: 'p1',
    tap: 'tap0123abcd-ef',
    bridge: 'brq89ab0123-45',
    mac: 'fa:16:3e:01:02:03',
    mtu: 1450,
    addresses: [{ address: '10.0.0.5', prefix: 24 }],
    gateway: '10.0.0.1',
    routes: [{ destination: '192.0.2.0/24', nexthop: '10.0.0.254' }],
  },
};

describe('NeutronPlumber: what reaches a command line is checked first', () => {
  const plumber = new NeutronPlumber();
  after(() => plumber.close());

  const cases: Array<[string, (a: VifAttachment) => void]> = [
    ['network namespace', (a) => (a.netns = '/var/run/netns/x; reboot')],
    ['network namespace', (a) => (a.netns = '/var/run/../../proc/1/ns/net')],
    ['interface name', (a) => (a.ifname = 'eth0 up')],
    ['tap name', (a) => (a.vif.tap = 'eth0')],
    ['bridge name', (a) => (a.vif.bridge = 'docker0')],
    ['MAC address', (a) => (a.vif.mac = "fa:16:3e:01:02:03' x")],
    ['MTU', (a) => (a.vif.mtu = 68)],
    ['address', (a) => (a.vif.addresses = [{ address: '10.0.0.5;id', prefix: 24 }])],
    ['gateway', (a) => (a.vif.gateway = '$(id)')],
    ['route', (a) => (a.vif.routes = [{ destination: 'default', nexthop: '10.0.0.1' }])],
  ];
  for (const [what, spoil] of cases) {
    it(`refuses an invalid ${what}`, async () => {
      const a = structuredClone(good);
      spoil(a);
      await assert.rejects(
        plumber.attach(a),
        (err: unknown) => err instanceof BerthError && err.code === 'RUNTIME_ERROR' && err.message.includes(`invalid ${what}`),
      );
    });
  }

  it('refuses an invalid tap name on detach', async () => {
    await assert.rejects(plumber.detach('tap0; reboot'), (err: unknown) => err instanceof BerthError && err.code === 'RUNTIME_ERROR');
  });
});
