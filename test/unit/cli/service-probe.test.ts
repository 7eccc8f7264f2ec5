import { strict as assert } from 'node:assert';
import { loadConfig } from '../../../conf/load.js';
import { imageServiceUp, imageServiceUrl, type StatusOf } from '../../../tools/cli/service-probe.js';

const GLANCE = 'http://127.0.0.1:29292';
const novaMode = (extra: Record<string, Record<string, unknown>> = {}) =>
  loadConfig({
    env: {},
    overrides: {
      nova: { control_plane: 'nova' },
      placement: { auth_url: 'http://127.0.0.1:25000/v3', username: 'placement', password: 'p', project_name: 'service' },
      glance: { api_url: GLANCE, auth_url: 'http://127.0.0.1:25000/v3', username: 'glance', password: 'g', project_name: 'service' },
      image_store: { listen: '0.0.0.0:43292', noauth_beyond_loopback: true },
      ...extra,
    },
  });

/** A real Glance answers every unauthenticated request with 401; berth-images answers /healthcheck when `bridgeUp`. */
function network(bridgeUp: boolean): { statusOf: StatusOf; asked: string[] } {
  const asked: string[] = [];
  const statusOf: StatusOf = async (url, path) => {
    asked.push(url + path);
    if (url === GLANCE) return 401;
    if (url === 'http://127.0.0.1:43292' && bridgeUp) return path === '/healthcheck' ? 200 : 401;
    throw new Error('connect ECONNREFUSED');
  };
  return { statusOf, asked };
}

describe('berth up/status: probing berth-images', () => {
  it("on a nova-mode node probes the image store's own address, not the cloud's Glance that answers 401", async () => {
    const config = novaMode();
    assert.equal(imageServiceUrl(config), 'http://127.0.0.1:43292');
    const up = network(true);
    assert.equal(await imageServiceUp(config, up.statusOf), true);
    assert.deepEqual(up.asked, ['http://127.0.0.1:43292/healthcheck']);
    assert.equal(await imageServiceUp(config, network(false).statusOf), false, 'a Glance answering is not berth-images running');
  });

  it('on a nova-mode node with [glance] api_url empty (the catalog) still probes the image store', async () => {
    assert.equal(await imageServiceUp(novaMode({ glance: { api_url: '' } }), network(true).statusOf), true);
  });

  it('in standalone mode probes [glance] api_url, where a 401 (keystone auth) is an answer', async () => {
    const config = loadConfig({ env: {}, overrides: { glance: { api_url: GLANCE } } });
    assert.equal(imageServiceUrl(config), GLANCE);
    assert.equal(await imageServiceUp(config, network(false).statusOf), true);
    const refused: StatusOf = () => Promise.reject(new Error('connect ECONNREFUSED'));
    assert.equal(await imageServiceUp(config, refused), false);
  });
});
