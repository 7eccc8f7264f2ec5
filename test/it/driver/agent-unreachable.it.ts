import { strict as assert } from 'node:assert';
import { createAgentClient } from '../../../agent/client/http.js';
import { AmqpPeer } from '../../support/amqp.js';
import { startDriverHarness, type DriverHarness } from '../../support/driver-harness.js';
import { waitUntil } from '../../support/waits.js';
import { buildAndRunInstance, imageDict, instancePrimitive } from '../../../tools/lib/nova-requests.js';

describe('compute driver with its agent unreachable (real HTTP client, nothing listening)', function () {
  this.timeout(60_000);
  let h: DriverHarness;
  let peer: AmqpPeer;

  before(async () => {
    // Port 9 on loopback: connections are refused at once.
    h = await startDriverHarness(createAgentClient({ url: 'http://127.0.0.1:9', token: 't', retries: 2, timeoutMs: 2000 }));
    peer = await AmqpPeer.open();
  });
  after(async () => {
    await peer?.close();
    await h?.stop();
  });

  it('fails the build to error with a fault naming the agent, and keeps serving', async () => {
    const inst = instancePrimitive({ image_id: 'img', flavor: { vcpus: 1, memory_mb: 64 } });
    const uuid = (inst['nova_object.data'] as { uuid: string }).uuid;
    peer.cast(h.exchange, `compute.${h.host}`, buildAndRunInstance(inst, imageDict({ id: 'img' })));
    await waitUntil(async () => (await h.driver.store.get(uuid))?.vm_state === 'error', 30_000, 'instance error');
    const fault = await h.driver.store.latestFault(uuid);
    assert.match(fault!.message, /unreachable|ECONNREFUSED/i);
    assert.equal(fault!.details, 'ComputeServiceUnavailable');
    const { reply } = await peer.call(h.exchange, `compute.${h.host}`, { method: 'ping', namespace: 'baseapi', version: '1.0', args: { arg: 'alive' } });
    assert.deepEqual(reply.result, { service: 'compute', arg: 'alive' });
  });
});
