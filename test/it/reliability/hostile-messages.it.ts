import { strict as assert } from 'node:assert';
import { createLogger, silentLogger } from '../../../common/log.js';
import { decodeBody, newUniqueId } from '../../../driver/rpc/envelope.js';
import { AmqpPeer } from '../../support/amqp.js';
import { CountingAgentClient } from '../../support/counting-agent.js';
import { startDriverHarness, type DriverHarness } from '../../support/driver-harness.js';
import { waitUntil } from '../../support/waits.js';
import { HostileCorpus, seededRng } from './hostile-corpus.js';

const TOTAL = 1000;
const BATCH = 100;
const MAX_BYTES = 256 * 1024;
const SEED = 20261125;
/** Generous: the corpus holds ~15% messages of 100-260 KB; a leak per message would exceed it. */
const RSS_GROWTH_LIMIT = 256 * 1024 * 1024;

/**
 * 1,000 malformed and hostile messages (seeded, so every run sends the same ones) at a driver on
 * the real broker with max_message_bytes = 256 KiB: each call is answered with exactly one
 * failure, each bad cast is dropped and counted, the node keeps answering pings between batches,
 * memory stays bounded and nothing is left in the queue.
 */
describe('reliability: 1,000 malformed and hostile messages', function () {
  this.timeout(120_000);
  let agent: CountingAgentClient;
  let h: DriverHarness | undefined;
  let peer: AmqpPeer;

  before(async () => {
    agent = new CountingAgentClient();
    h = await startDriverHarness(
      agent,
      // Replies to queues that never exist are retried for this long (oslo's 60 s by default,
      // for a caller failing over), then abandoned: short here, the batches wait for them.
      { DEFAULT: { max_message_bytes: MAX_BYTES }, oslo_messaging_rabbit: { kombu_missing_consumer_retry_timeout: 1 } },
      process.env.BERTH_TEST_LOG ? createLogger('berth-compute', { destination: 2 }) : silentLogger(),
    );
    peer = await AmqpPeer.open();
  });
  after(async () => {
    await peer?.close();
    await h?.stop();
  });

  it('answers every call with one failure, drops every bad cast, stays alive and bounded', async () => {
    const { driver, exchange, host } = h!;
    const serverQueue = `compute.${host}`;
    const replyQueue = `reply_${newUniqueId()}`;
    await peer.ch.assertQueue(replyQueue, { exclusive: true, autoDelete: true, arguments: { 'x-expires': 600_000 } });
    const finals = new Map<string, Record<string, unknown>[]>();
    let heartbeats = 0;
    await peer.ch.consume(
      replyQueue,
      (m) => {
        if (!m) return;
        const reply = decodeBody(m.content);
        if (reply.ending !== true) {
          heartbeats++;
          return;
        }
        const id = String(reply._msg_id);
        finals.set(id, [...(finals.get(id) ?? []), reply]);
      },
      { noAck: true },
    );

    let pings = 0;
    const ping = async () => {
      pings++;
      const { reply } = await peer.call(exchange, serverQueue, { method: 'ping', namespace: 'baseapi', version: '1.0', args: { arg: pings } }, 10_000);
      assert.equal(reply.failure, null, 'the node answers a ping');
    };
    await ping();
    const stats = driver.server.stats;
    const before = { ...stats, pings };
    const rssBefore = process.memoryUsage().rss;

    const corpus = new HostileCorpus(seededRng(SEED), { replyQueue, serverQueue, maxBytes: MAX_BYTES });
    const expected = new Map<string, string>();
    const count = { malformed: 0, failed: 0, loops: 0, bytes: 0 };
    const t0 = Date.now();
    for (let sent = 0; sent < TOTAL;) {
      for (let i = 0; i < BATCH; i++, sent++) {
        const c = corpus.next();
        count[c.stage]++;
        if (c.loopsBack) count.loops++;
        count.bytes += c.body.length;
        if (c.msgId) expected.set(c.msgId, c.label);
        peer.publishRaw(exchange, serverQueue, c.body, c.contentType);
      }
      const want = sent + count.loops + (pings - before.pings);
      await waitUntil(
        () => stats.received - before.received >= want && stats.inFlight === 0 && [...expected.keys()].every((id) => finals.has(id)),
        30_000,
        `batch ending at message ${sent} (${want} deliveries, ${expected.size} replies)`,
      ).catch((err: Error) => {
        const missing = [...expected].filter(([id]) => !finals.has(id)).map(([, label]) => label);
        throw new Error(
          `${err.message}; received ${stats.received - before.received}, in flight ${stats.inFlight}, no reply yet: ${missing.slice(0, 10).join('; ')}`,
        );
      });
      await ping();
    }
    const elapsedMs = Date.now() - t0;
    const rssGrowth = process.memoryUsage().rss - rssBefore;

    const problems: string[] = [];
    for (const [id, label] of expected) {
      const got = finals.get(id) ?? [];
      if (got.length !== 1) problems.push(`${label}: ${got.length} final replies`);
      else if (typeof got[0]!.failure !== 'string') problems.push(`${label}: reply without a failure`);
      else if (typeof (JSON.parse(got[0]!.failure) as { class?: unknown }).class !== 'string') problems.push(`${label}: failure without a class`);
    }
    for (const id of finals.keys()) if (!expected.has(id)) problems.push(`unexpected reply to ${id}`);
    assert.deepEqual(problems, [], 'each call answered exactly once, with a failure');
    assert.equal(heartbeats, 0, 'no call-monitor heartbeats for calls that fail within a second');
    assert.equal(stats.malformed - before.malformed, count.malformed + count.loops, 'malformed messages dropped');
    assert.equal(stats.failures - before.failures, count.failed, 'messages that failed in dispatch or in the method');
    assert.equal(stats.duplicates - before.duplicates, 0);
    assert.equal(agent.createsByUuid.size, 0, 'no hostile build reached the agent');
    assert.deepEqual(await driver.store.listAll(host, true), [], 'no instance recorded');
    assert.ok(rssGrowth < RSS_GROWTH_LIMIT, `RSS grew ${(rssGrowth / 2 ** 20).toFixed(1)} MiB`);

    // Stopping the consumer returns anything still unacked to the queue, where it would show.
    await h!.stop();
    h = undefined;
    const { messageCount } = await peer.ch.checkQueue(serverQueue);
    assert.equal(messageCount, 0, `${serverQueue} is empty, nothing left unacked`);
    await peer.ch.deleteQueue(serverQueue);
    console.log(
      `      ${TOTAL} hostile messages (${(count.bytes / 2 ** 20).toFixed(1)} MiB; ${count.malformed} malformed, ${count.failed} failing, ${expected.size} calls answered) ` +
        `in ${elapsedMs} ms with ${TOTAL / BATCH} pings: ${Math.round(TOTAL / (elapsedMs / 1000))} msg/s; RSS ${rssGrowth >= 0 ? '+' : ''}${(rssGrowth / 2 ** 20).toFixed(1)} MiB`,
    );
  });
});
