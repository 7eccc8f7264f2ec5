import assert from 'node:assert/strict';
import type { DockerApi } from '../../../agent/runtime/docker-api.js';
import { ContainerNames } from '../../../agent/runtime/container-names.js';
import { LABEL_HOST, LABEL_INSTANCE } from '../../../agent/runtime/types.js';

const UUID = '6f1c2b9e-1d2c-4a7b-9b1e-0c5d3f2a8e41';

/** An engine holding `berth-<uuid>` with these labels (or nothing), counting the inspects asked. */
function engine(labels: Record<string, string> | null) {
  const asked: string[] = [];
  const api = {
    json: async (req: { path: string }) => {
      asked.push(req.path);
      return labels ? { status: 200, body: { Config: { Labels: labels } }, message: '' } : { status: 404, body: null, message: 'no such container' };
    },
  } as unknown as DockerApi;
  return { api, asked };
}

describe('agent ContainerNames: one instance on two hosts of one engine', () => {
  it('uses berth-<uuid> when it is free, asking again until a container has it', async () => {
    const { api, asked } = engine(null);
    const names = new ContainerNames(api, 'node-b');
    assert.equal(await names.of(UUID), `berth-${UUID}`);
    assert.equal(await names.of(UUID), `berth-${UUID}`);
    // Each time: the usual name, then the second name (not this host's either).
    assert.equal(asked.length, 4);
  });

  it("finds this host's container under berth-<uuid>.<host> once the other host removed berth-<uuid> (an agent restarted meanwhile)", async () => {
    const asked: string[] = [];
    const api = {
      json: async (req: { path: string }) => {
        asked.push(req.path);
        return req.path === `/containers/berth-${UUID}.node-b/json`
          ? { status: 200, body: { Config: { Labels: { [LABEL_INSTANCE]: UUID, [LABEL_HOST]: 'node-b' } } }, message: '' }
          : { status: 404, body: null, message: 'no such container' };
      },
    } as unknown as DockerApi;
    const names = new ContainerNames(api, 'node-b');
    assert.equal(await names.of(UUID), `berth-${UUID}.node-b`);
    assert.equal(await names.of(UUID), `berth-${UUID}.node-b`);
    assert.equal(asked.length, 2, 'remembered once found');
  });

  it('keys the host network link by the uuid under berth-<uuid>, by <uuid>.<host> under the second name', () => {
    assert.equal(ContainerNames.linkKey(UUID, `/berth-${UUID}`), UUID);
    assert.equal(ContainerNames.linkKey(UUID, `/berth-${UUID}.node-b`), `${UUID}.node-b`);
    assert.equal(ContainerNames.linkKey(UUID, undefined), UUID);
  });

  it("keeps berth-<uuid> for this host's own container and remembers it", async () => {
    const { api, asked } = engine({ [LABEL_INSTANCE]: UUID, [LABEL_HOST]: 'node-b' });
    const names = new ContainerNames(api, 'node-b');
    assert.equal(await names.of(UUID), `berth-${UUID}`);
    assert.equal(await names.of(UUID), `berth-${UUID}`);
    assert.equal(asked.length, 1);
  });

  it('takes berth-<uuid>.<host> when another host holds the usual name for the same instance', async () => {
    const { api } = engine({ [LABEL_INSTANCE]: UUID, [LABEL_HOST]: 'node-a' });
    const names = new ContainerNames(api, 'node b/2');
    assert.equal(await names.of(UUID), `berth-${UUID}.node-b-2`);
  });

  it('leaves an unlabelled or unhosted holder of the name to the caller (never a second name)', async () => {
    const holders: Record<string, string>[] = [{}, { [LABEL_INSTANCE]: UUID }, { [LABEL_INSTANCE]: UUID, [LABEL_HOST]: '' }];
    for (const labels of holders) {
      assert.equal(await new ContainerNames(engine(labels).api, 'node-b').of(UUID), `berth-${UUID}`);
    }
  });

  it('asks nothing without a host, and forgets a removed container', async () => {
    const none = engine({ [LABEL_INSTANCE]: UUID, [LABEL_HOST]: 'node-a' });
    assert.equal(await new ContainerNames(none.api, undefined).of(UUID), `berth-${UUID}`);
    assert.equal(none.asked.length, 0);
    const { api, asked } = engine({ [LABEL_INSTANCE]: UUID, [LABEL_HOST]: 'node-a' });
    const names = new ContainerNames(api, 'node-b');
    await names.of(UUID);
    names.forget(UUID);
    await names.of(UUID);
    assert.equal(asked.length, 2);
  });
});
