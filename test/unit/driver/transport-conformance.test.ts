import { strict as assert } from 'node:assert';
import { transportConformance } from '../../conformance/transport.js';
import { MemoryBroker, MemoryTransport, topicMatches } from '../../fakes/transport.js';

transportConformance('in-process MemoryTransport', async () => {
  const broker = new MemoryBroker();
  return { open: () => new MemoryTransport(broker), cleanup: async () => {} };
});

describe('MemoryBroker topic matching', () => {
  it('matches as RabbitMQ does: * one word, # zero or more', () => {
    assert.ok(topicMatches('compute.host', 'compute.host'));
    assert.ok(!topicMatches('compute.host', 'compute.other'));
    assert.ok(topicMatches('a.*', 'a.b') && !topicMatches('a.*', 'a.b.c') && !topicMatches('a.*', 'a'));
    assert.ok(topicMatches('a.#', 'a') && topicMatches('a.#', 'a.b.c') && topicMatches('#', 'x.y'));
    assert.ok(topicMatches('#.z', 'z') && topicMatches('a.#.z', 'a.b.c.z') && !topicMatches('a.#.z', 'a.b'));
  });
});
