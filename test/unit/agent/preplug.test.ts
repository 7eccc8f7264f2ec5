import { strict as assert } from 'node:assert';
import type { VifSpec } from '../../../agent/client/types.js';
import { createPreplugged } from '../../../agent/network/preplug.js';

const vif: VifSpec = {
  portId: 'p1',
  tap: 'tap0123456789a',
  bridge: 'brq0123456789a',
  mac: 'fa:16:3e:00:00:01',
  mtu: 1450,
  addresses: [],
  gateway: null,
  routes: [],
  dns: [],
};

/** A host's networking that records what is asked of it; `preplug` ends when told. */
function fakeNet(opts: { preplugFails?: boolean } = {}) {
  const log: string[] = [];
  let finish: () => void = () => undefined;
  const net = {
    log,
    finishPreplug: () => finish(),
    preplug: (uuid: string, vifs: VifSpec[]) =>
      new Promise<void>((resolve, reject) => {
        log.push(`preplug ${uuid} ${vifs.map((v) => v.tap).join(',')}`);
        finish = () => {
          log.push('preplug done');
          if (opts.preplugFails) reject(new Error('no bridge'));
          else resolve();
        };
      }),
    release: async (vifs: VifSpec[]) => void log.push(`release ${vifs.map((v) => v.tap).join(',')}`),
  };
  return net;
}

describe('createPreplugged: the taps are made while the container is', () => {
  it('begins the taps before the create, and returns the create once both ended', async () => {
    const net = fakeNet();
    const made = createPreplugged(net, 'u1', [vif], async () => {
      net.log.push('create');
      net.finishPreplug();
      return 'container';
    });
    assert.equal(await made, 'container');
    assert.deepEqual(net.log, [`preplug u1 ${vif.tap}`, 'create', 'preplug done']);
  });

  it('a create that fails removes the pairs, once the taps are made, and fails with its own error', async () => {
    const net = fakeNet();
    const made = createPreplugged(net, 'u1', [vif], async () => {
      setTimeout(() => net.finishPreplug(), 20);
      throw new Error('engine refused');
    });
    await assert.rejects(made, /engine refused/);
    assert.deepEqual(net.log, [`preplug u1 ${vif.tap}`, 'preplug done', `release ${vif.tap}`]);
  });

  it('taps that cannot be made early leave the create to the plug: the create goes on and nothing is removed', async () => {
    const net = fakeNet({ preplugFails: true });
    const made = createPreplugged(net, 'u1', [vif], async () => {
      net.finishPreplug();
      return 'container';
    });
    assert.equal(await made, 'container');
    assert.equal(
      net.log.some((l) => l.startsWith('release')),
      false,
    );
  });
});
