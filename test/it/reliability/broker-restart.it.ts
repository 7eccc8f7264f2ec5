import { strict as assert } from 'node:assert';
import { once } from 'node:events';
import { createLogger, silentLogger } from '../../../common/log.js';
import { buildAndRunInstance, imageDict, instancePrimitive } from '../../../tools/lib/nova-requests.js';
import { AmqpPeer } from '../../support/amqp.js';
import { CountingAgentClient } from '../../support/counting-agent.js';
import { startDriverHarness, type DriverHarness } from '../../support/driver-harness.js';
import { startRabbitNode, type RabbitNode } from '../../support/rabbit-node.js';
import { waitUntil } from '../../support/waits.js';

const BUILDS = 20;

/**
 * RabbitMQ restarted (stop_app + start_app: every connection dropped) while 20 builds are in
 * flight. The broker is a private node, so the restart cannot disturb other clients.
 *
 * Two deployments, because they lose different things on a restart:
 * - default, non-durable queues: the queues and the messages in them die with the broker, so the
 *   test waits until the driver has received all 20 before restarting; the driver must finish
 *   them from memory and come back consuming.
 * - amqp_durable_queues with persistent messages: the broker keeps the 20 unacked messages and
 *   redelivers all of them after the restart, so the driver must recognise each as one it is
 *   running or has done, and ack it, without a second container.
 */
describe('reliability: RabbitMQ restart during 20 in-flight builds', function () {
  this.timeout(120_000);
  let rabbit: RabbitNode;

  before(async () => {
    rabbit = await startRabbitNode();
  });
  after(async () => {
    await rabbit?.stop();
  });

  for (const durable of [false, true]) {
    it(`finishes all ${BUILDS} builds exactly once (${durable ? 'durable queues, persistent messages' : 'default non-durable queues'})`, async () => {
      const agent = new CountingAgentClient();
      agent.createDelayMs = 1500;
      let h: DriverHarness | undefined;
      let peer: AmqpPeer | undefined;
      // Notification queues are named by topic alone, so each deployment gets its own vhost.
      const vhost = durable ? 'durable' : 'transient';
      try {
        const urls = await rabbit.addVhost(vhost);
        h = await startDriverHarness(
          agent,
          {
            DEFAULT: { transport_url: urls.transportUrl, max_concurrent_builds: 10 },
            oslo_messaging_rabbit: { amqp_durable_queues: durable },
            compute: { vcpus: 64 },
          },
          process.env.BERTH_TEST_LOG ? createLogger('berth-compute', { destination: 2 }) : silentLogger(),
        );
        const { driver, exchange, host } = h;
        peer = await AmqpPeer.open(urls.amqpUrl);
        const uuids: string[] = [];
        for (let i = 0; i < BUILDS; i++) {
          const inst = instancePrimitive({ image_id: 'img-restart', flavor: { vcpus: 1, memory_mb: 64 } });
          uuids.push((inst['nova_object.data'] as { uuid: string }).uuid);
          peer.cast(exchange, `compute.${host}`, buildAndRunInstance(inst, imageDict({ id: 'img-restart' })));
        }
        // Restart with some builds done (their acks must not be lost either) and more still creating.
        await waitUntil(
          () => driver.server.stats.received >= BUILDS && agent.instances.size >= 5 && agent.createsInFlight >= 5,
          20_000,
          'all builds received, 5 done, 5 creating',
        );
        const inFlightAtRestart = agent.createsInFlight;
        const doneAtRestart = agent.instances.size;
        await peer.close();
        peer = undefined;

        const reconnected = once(driver.transport, 'connected');
        const t0 = Date.now();
        const { downMs } = await rabbit.restart();
        await Promise.race([reconnected, new Promise((_, reject) => setTimeout(() => reject(new Error('driver did not reconnect within 30 s')), 30_000))]);
        const reconnectMs = Date.now() - t0;

        await waitUntil(
          async () => {
            const rows = await Promise.all(uuids.map((u) => driver.store.get(u)));
            return rows.every((r) => r && r.vm_state !== 'building');
          },
          60_000,
          'every build finished',
        );
        const rows = await Promise.all(uuids.map((u) => driver.store.get(u)));
        const states = rows.map((r) => `${r?.vm_state}/${r?.task_state ?? '-'}`);
        assert.deepEqual(
          states,
          uuids.map(() => 'active/-'),
          'every instance active, no task left',
        );
        for (const u of uuids) assert.equal(agent.createsByUuid.get(u), 1, `createInstance ran exactly once for ${u}`);
        assert.equal(agent.instances.size, BUILDS, 'one container per instance, none extra');

        // Nothing left behind in the broker: no message unacked on the live channel, none waiting.
        await waitUntil(
          async () => {
            const depth = await rabbit.queueDepth(`compute.${host}`, vhost);
            return depth !== null && depth.ready === 0 && depth.unacked === 0 ? depth : undefined;
          },
          10_000,
          `compute.${host} drained (ready and unacked 0)`,
        );

        peer = await AmqpPeer.open(urls.amqpUrl);
        const { reply } = await peer.call(exchange, `compute.${host}`, {
          method: 'ping',
          namespace: 'baseapi',
          version: '1.0',
          args: { arg: 'after-restart' },
        });
        assert.equal(reply.failure, null);
        assert.deepEqual(reply.result, { service: 'compute', arg: 'after-restart' });
        const s = driver.server.stats;
        console.log(
          `      broker down for ${downMs} ms (stop_app + start_app), driver reconnected ${reconnectMs} ms after the restart began (${reconnectMs - downMs} ms after the broker was back); in flight at restart: ${inFlightAtRestart} creating, ${doneAtRestart} done; received ${s.received}, duplicates ${s.duplicates}`,
        );
      } finally {
        await peer?.close();
        await h?.stop();
      }
    });
  }
});
