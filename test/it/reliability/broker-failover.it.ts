import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createLogger, silentLogger } from '../../../common/log.js';
import type { BerthError } from '../../../common/errors.js';
import { rabbitDefaults } from '../../../driver/rpc/broker-connect.js';
import { newUniqueId } from '../../../driver/rpc/envelope.js';
import { AmqpTransport } from '../../../driver/rpc/amqp-transport.js';
import { probeBroker } from '../../../tools/cli/broker-probe.js';
import { buildAndRunInstance, imageDict, instancePrimitive } from '../../../tools/lib/nova-requests.js';
import { RpcClient } from '../../../tools/lib/rpc-client.js';
import { CountingAgentClient } from '../../support/counting-agent.js';
import { runOsloClient } from '../../support/python.js';
import { startDriverHarness, type DriverHarness } from '../../support/driver-harness.js';
import { waitUntil } from '../../support/waits.js';

const run = promisify(execFile);
const SCRIPT = join(import.meta.dirname, '../../../tools/dev/rabbit-cluster.sh');
const NODES = 3;
const BASE = 46672;
const BEFORE_KILL = 20;
const DURING_FAILOVER = 10;

/**
 * The broker node a running compute node is connected to dies (SIGKILL of its process group)
 * while builds are in flight and more are being sent. The cluster (tools/dev/rabbit-cluster.sh)
 * is three RabbitMQ nodes on loopback with quorum queues, as clouds run it: a quorum queue keeps
 * its messages while a majority of its members live (two nodes would lose that majority with
 * one). The compute node and the client (the CLI's RPC client) both hold all three hosts in
 * transport_url and fail over as oslo.messaging does; every build must finish exactly once, and
 * RPC calls must be answered through the surviving nodes.
 */
describe('reliability: the broker node a compute node uses dies (3-node cluster, quorum queues)', function () {
  this.timeout(300_000);
  const env = { ...process.env, BERTH_RABBIT_CLUSTER_DIR: mkdtempSync(join(tmpdir(), 'berth-rabbit-cluster-')), BERTH_RABBIT_BASE_PORT: String(BASE) };
  const url = Array.from({ length: NODES }, (_, i) => `guest:guest@127.0.0.1:${BASE + i}`).join(',');
  const transportUrl = `rabbit://${url}/`;

  before(async () => {
    await run('bash', [SCRIPT, 'start', String(NODES)], { env, timeout: 240_000 });
  });
  after(async () => {
    await run('bash', [SCRIPT, 'stop'], { env, timeout: 120_000 });
  });

  const tlsFiles = () => {
    const d = join(env.BERTH_RABBIT_CLUSTER_DIR, 'tls');
    return {
      ca: join(d, 'ca.pem'),
      cert: join(d, 'client.pem'),
      key: join(d, 'client.key'),
      strangerCert: join(d, 'stranger.pem'),
      strangerKey: join(d, 'stranger.key'),
    };
  };
  const tlsUrl = `amqps://${Array.from({ length: NODES }, (_, i) => `guest:guest@localhost:${BASE + 10 + i}`).join(',')}/`;

  /** A message sent and received back over one transport: the connection really carries AMQP. */
  async function roundTrip(t: AmqpTransport): Promise<string> {
    const queue = `tls-check-${newUniqueId()}`;
    const got = new Promise<string>((resolve) => {
      t.onConnect(async (ch) => ch.assertQueue(queue, { durable: false, autoDelete: true }));
      t.consume(queue, (d) => {
        d.ack();
        resolve(d.body.toString());
      });
    });
    await t.start();
    await t.publish('', queue, Buffer.from('over tls'));
    return got;
  }

  it('TLS: amqps:// with the CA, a client certificate and host name verification; the same with ssl=true on rabbit://', async () => {
    const f = tlsFiles();
    const rabbit = { ...rabbitDefaults(), ssl_ca_file: f.ca, ssl_cert_file: f.cert, ssl_key_file: f.key, ssl_enforce_hostname_verification: true };
    for (const u of [tlsUrl, tlsUrl.replace('amqps://', 'rabbit://')]) {
      const t = new AmqpTransport({ url: u, rabbit: { ...rabbit, ssl: u.startsWith('rabbit:') }, prefetch: 0, log: silentLogger() });
      try {
        assert.equal(await roundTrip(t), 'over tls');
        assert.match(t.connectedHost!, /^localhost:4668\d$/);
      } finally {
        await t.close();
      }
    }
    // No CA: encrypted, the broker not authenticated (oslo's ssl=True without ssl_ca_file).
    await probeBroker(tlsUrl, rabbitDefaults(), 5000);
  });

  it('TLS refusals are told apart: an unknown CA, a client certificate from another CA, a wrong password, nothing listening', async () => {
    const f = tlsFiles();
    const base = rabbitDefaults();
    await assert.rejects(probeBroker(tlsUrl, { ...base, ssl_ca_file: f.strangerCert }, 5000), (err: BerthError) => {
      assert.equal(err.code, 'BROKER_UNREACHABLE');
      assert.match(err.message, /TLS handshake failed|certificate/);
      return true;
    });
    await assert.rejects(
      probeBroker(tlsUrl, { ...base, ssl_ca_file: f.ca, ssl_cert_file: f.strangerCert, ssl_key_file: f.strangerKey }, 5000),
      (err: BerthError) => {
        assert.equal(err.code, 'BROKER_UNREACHABLE');
        return true;
      },
    );
    await assert.rejects(probeBroker(transportUrl.replaceAll('guest:guest@', 'guest:wrong@'), base, 5000), (err: BerthError) => {
      assert.equal(err.code, 'BROKER_AUTH_REFUSED');
      return true;
    });
    await assert.rejects(probeBroker(`rabbit://guest:guest@127.0.0.1:${BASE + 9}/`, base, 5000), (err: BerthError) => {
      assert.equal(err.code, 'BROKER_UNREACHABLE');
      assert.match(err.message, /connection refused/);
      return true;
    });
    // One host down is no failure: the probe needs one host that lets it in.
    await probeBroker(`rabbit://guest:guest@127.0.0.1:${BASE + 9},guest:guest@127.0.0.1:${BASE}/`, base, 5000);
  });

  it(`finishes ${BEFORE_KILL} builds in flight and ${DURING_FAILOVER} sent during the failover exactly once, and answers calls again`, async () => {
    const agent = new CountingAgentClient();
    agent.createDelayMs = 1500;
    let h: DriverHarness | undefined;
    let client: RpcClient | undefined;
    const rabbit = { ...rabbitDefaults(), rabbit_quorum_queue: true };
    try {
      h = await startDriverHarness(
        agent,
        { DEFAULT: { transport_url: transportUrl, max_concurrent_builds: 10 }, oslo_messaging_rabbit: { rabbit_quorum_queue: true }, compute: { vcpus: 64 } },
        process.env.BERTH_TEST_LOG ? createLogger('berth-compute', { destination: 2 }) : silentLogger(),
      );
      const { driver, exchange, host } = h;
      // A client on the node the compute node uses, so that both fail over (each shuffles the
      // hosts, as oslo does: a few tries find one there).
      for (let i = 0; i < 30 && client?.connectedHost !== driver.transport.connectedHost; i++) {
        await client?.close();
        client = new RpcClient({ url: transportUrl, exchange, rabbit, connectTimeoutMs: 20_000 });
        await client.connect();
      }
      assert.equal(client!.connectedHost, driver.transport.connectedHost, 'a client on the same broker node');
      const build = async () => {
        const inst = instancePrimitive({ image_id: 'img-failover', flavor: { vcpus: 1, memory_mb: 64 } });
        await client!.cast(`compute.${host}`, buildAndRunInstance(inst, imageDict({ id: 'img-failover' })));
        return (inst['nova_object.data'] as { uuid: string }).uuid;
      };
      const uuids: string[] = [];
      for (let i = 0; i < BEFORE_KILL; i++) uuids.push(await build());
      await waitUntil(
        () => driver.server.stats.received >= BEFORE_KILL && agent.instances.size >= 5 && agent.createsInFlight >= 5,
        30_000,
        'all builds received, 5 done, 5 creating',
      );

      const connected = driver.transport.connectedHost!;
      const victim = Number(connected.split(':')[1]) - BASE;
      assert.ok(victim >= 0 && victim < NODES, `connected to ${connected}`);
      let lostAt = 0;
      let reconnectedAt = 0;
      driver.transport.once('disconnected', () => {
        lostAt = Date.now();
        driver.transport.once('connected', () => (reconnectedAt = Date.now()));
      });
      await run('bash', [SCRIPT, 'kill', String(victim)], { env, timeout: 60_000 });
      // More builds while the compute node (and perhaps the client) fail over.
      for (let i = 0; i < DURING_FAILOVER; i++) uuids.push(await build());

      // The first RPC answered after the loss: a baseapi ping through whichever node is left.
      let firstCallMs = -1;
      let attempts = 0;
      await waitUntil(
        async () => {
          attempts++;
          try {
            const r = await client!.call<{ arg: string }>(`compute.${host}`, { method: 'ping', namespace: 'baseapi', version: '1.0', args: { arg: 'b' } }, 3);
            if (r.arg !== 'b') return false;
            firstCallMs = Date.now() - lostAt;
            return true;
          } catch {
            return false;
          }
        },
        90_000,
        'a call answered after the failover',
        100,
      );
      assert.ok(lostAt > 0 && reconnectedAt > lostAt, 'the compute node saw the loss and reconnected');
      assert.notEqual(driver.transport.connectedHost, connected, 'the compute node moved to another broker node');
      assert.notEqual(client!.connectedHost, connected, 'the client moved to another broker node');

      // The stock oslo.messaging client, with the same three hosts and quorum queues (as a URL
      // query override), finds a live node and is answered; its declarations agree with Berth's.
      const stock = await runOsloClient<{ result?: unknown; error?: unknown }>(
        {
          url: `${transportUrl}?rabbit_quorum_queue=true`,
          exchange,
          server: host,
          mode: 'call',
          topic: 'compute',
          method: 'ping',
          namespace: 'baseapi',
          version: '1.0',
          args: { arg: 'stock' },
          ctxt: {},
          timeout: 20,
        },
        40_000,
      );
      assert.deepEqual(stock, { ...stock, result: { service: 'compute', arg: 'stock' } }, JSON.stringify(stock));

      await waitUntil(
        async () => {
          const rows = await Promise.all(uuids.map((u) => driver.store.get(u)));
          return rows.every((r) => r && r.vm_state !== 'building');
        },
        90_000,
        'every build finished',
      );
      const rows = await Promise.all(uuids.map((u) => driver.store.get(u)));
      assert.deepEqual(
        rows.map((r) => `${r?.vm_state}/${r?.task_state ?? '-'}`),
        uuids.map(() => 'active/-'),
        'every instance active, no task left',
      );
      for (const u of uuids) assert.equal(agent.createsByUuid.get(u), 1, `createInstance ran exactly once for ${u}`);
      assert.equal(agent.instances.size, BEFORE_KILL + DURING_FAILOVER, 'one container per instance, none extra');
      const s = driver.server.stats;
      console.log(
        `      killed node ${victim} (${connected}); the compute node saw the loss, reconnected to ${driver.transport.connectedHost} ` +
          `${reconnectedAt - lostAt} ms later; first call answered ${firstCallMs} ms after the loss (${attempts} attempts); ` +
          `received ${s.received}, duplicates recognised ${s.duplicates}`,
      );
    } finally {
      await client?.close().catch(() => undefined);
      await h?.stop();
    }
  });
});
