import { strict as assert } from 'node:assert';
import { silentLogger } from '../../../common/log.js';
import { openDriverDatabase } from '../../../driver/db/index.js';
import { MAX_CONSOLE_BYTES, novaConsoleTail } from '../../../driver/compute/console.js';
import { computeEndpoint } from '../../../driver/compute/endpoint.js';
import { ComputeManager } from '../../../driver/compute/manager.js';
import { InstanceStore } from '../../../driver/compute/store.js';
import { Notifier } from '../../../driver/notify/notifier.js';
import { decodeInstance } from '../../../driver/objects/instance.js';
import { instancePrimitive } from '../../../tools/lib/nova-requests.js';
import { FakeAgentClient } from '../../fakes/agent-client.js';
import { FakeImageService } from '../../fakes/glance-images.js';
import { FakePublisher } from '../../fakes/publisher.js';
import { testResources } from '../../support/driver-fixtures.js';

/** nova's _tail_log over the whole log: the reference the answers are compared with. */
function novaTail(log: string, length: number | null): string {
  if (length === null) return log;
  if (length === 0) return '';
  return log.split('\n').slice(-length).join('\n');
}

/** Docker's `logs?tail=N`: the last N lines, each with its newline (a last partial line counts). */
function dockerTail(log: string, n: number): string {
  const lines = log.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  return n === 0 ? '' : lines.slice(-n).join('');
}

class DockerLikeAgent extends FakeAgentClient {
  log = '';
  override async consoleLog(uuid: string, tailLines?: number): Promise<string> {
    await super.consoleLog(uuid, tailLines);
    return tailLines === undefined ? dockerTail(this.log, 100) : dockerTail(this.log, tailLines);
  }
}

describe("console output: nova's tail semantics", () => {
  const ctx = { request_id: 'req-00000000-0000-4000-8000-000000000000', user_id: 'u', project_id: 'p' };
  let agent: DockerLikeAgent;
  let store: InstanceStore;
  let output: (tail: number | null) => Promise<unknown>;

  beforeEach(async () => {
    agent = new DockerLikeAgent();
    store = new InstanceStore(await openDriverDatabase('sqlite://'));
    const notifier = new Notifier(new FakePublisher(), {
      exchange: 'nova',
      host: 'n1',
      format: 'unversioned',
      driver: 'messagingv2',
      versionedTopic: 'versioned_notifications',
      legacyTopic: 'notifications',
      rabbit: { amqp_durable_queues: false, amqp_auto_delete: false, rabbit_ha_queues: false, rabbit_quorum_queue: false, rabbit_transient_queues_ttl: 1800 },
      log: silentLogger(),
    });
    const resources = testResources({ memory_mb: 1024, reserved_host_memory_mb: 0 });
    const manager = new ComputeManager({ host: 'n1', node: 'n1', store, agent, notifier, resources, images: new FakeImageService(), log: silentLogger() });
    const primitive = instancePrimitive({ image_id: 'img', flavor: { vcpus: 1, memory_mb: 64 } });
    await manager.buildAndRun(ctx, decodeInstance(primitive), 'img');
    const endpoint = computeEndpoint(manager, agent);
    const method = endpoint.methods.get_console_output!;
    output = (tail) => Promise.resolve(method.handler(ctx, endpoint.deserialize!({ instance: primitive, tail_length: tail }, method)));
  });
  afterEach(() => store.close());

  it('a log ending in a newline gives N-1 lines and the empty last piece, as nova does', async () => {
    agent.log = 'one\ntwo\nthree\n';
    assert.equal(await output(2), 'three\n');
    assert.equal(await output(1), '');
    assert.equal(await output(3), 'two\nthree\n');
  });

  it('matches nova for every tail length, with and without a final newline, and for no tail', async () => {
    for (const log of ['one\ntwo\nthree\n', 'one\ntwo\nthree', '\n\nx\n\n', 'single', '']) {
      agent.log = log;
      for (const tail of [null, 0, 1, 2, 3, 4, 5, 50]) assert.equal(await output(tail), novaTail(log, tail), `log ${JSON.stringify(log)}, tail ${tail}`);
    }
  });

  it("keeps the newest MAX_CONSOLE_BYTES before cutting, as libvirt's console read does", () => {
    const line = 'x'.repeat(1023) + '\n';
    const log = line.repeat(150);
    assert.equal(novaConsoleTail(log, null).length, MAX_CONSOLE_BYTES);
    assert.equal(novaConsoleTail(log, 1000), log.slice(-MAX_CONSOLE_BYTES));
    assert.equal(novaConsoleTail(log, 3), line.repeat(2));
  });
});
