import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import sinon from 'sinon';
import { silentLogger } from '../../../common/log.js';
import { DockerPlugs } from '../../../agent/network/docker-plugs.js';
import type { DockerNetworks } from '../../../agent/network/docker-networks.js';
import type { DockerApi } from '../../../agent/runtime/docker-api.js';
import { DockerEventHub } from '../../../agent/runtime/docker-event-hub.js';
import { LABEL_INSTANCE, LABEL_NETWORK } from '../../../agent/runtime/types.js';
import { followStarts } from '../../../agent/volumes/start-follower.js';

/** An engine whose event stream is a PassThrough per connection; every other call lists no container. */
class FakeEventSource {
  readonly streams: PassThrough[] = [];
  readonly queries: Array<Record<string, string[]>> = [];
  lists = 0;
  readonly api = {
    raw: async (call: { path: string; query?: Record<string, string> }) => {
      assert.equal(call.path, '/events');
      this.queries.push(JSON.parse(call.query!.filters!) as Record<string, string[]>);
      const body = new PassThrough();
      this.streams.push(body);
      return { status: 200, headers: {}, body };
    },
    json: async () => {
      this.lists++;
      return { status: 200, body: [] };
    },
  } as unknown as DockerApi;

  send(stream: number, ev: object): void {
    this.streams[stream]!.write(`${JSON.stringify(ev)}\n`);
  }
}

const until = async (what: string, ok: () => boolean): Promise<void> => {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(ok(), what);
};

describe('DockerEventHub: one engine event stream for the plugs and the volumes', () => {
  it('subscribes once, hands each consumer its actions, and a reconnect subscribes once again', async () => {
    const engine = new FakeEventSource();
    const hub = new DockerEventHub(engine.api, silentLogger());
    const networks = { resetAddressBook: sinon.spy(), noteCreated: sinon.spy(), noteRemoved: sinon.spy() };
    const inspect = sinon.stub().resolves(null);
    const plugs = new DockerPlugs(engine.api, networks as unknown as DockerNetworks, inspect, 'node-a');
    const watch = plugs.follow(silentLogger(), hub);
    const volumeStarts = sinon.stub().resolves();
    followStarts(hub, volumeStarts, silentLogger());
    hub.start();
    try {
      await until('connected, and the plugs caught up', () => engine.lists === 1);
      assert.equal(engine.streams.length, 1, 'one connection to the engine');
      assert.deepEqual(engine.queries[0], { type: ['container'], event: ['create', 'destroy', 'start'], label: [LABEL_INSTANCE] });
      assert.equal(networks.resetAddressBook.callCount, 1);

      const uuid = '6f1c1c1e-0000-4000-8000-000000000001';
      engine.send(0, { Action: 'create', Actor: { Attributes: { [LABEL_INSTANCE]: uuid } } });
      engine.send(0, { Action: 'start', timeNano: Date.now() * 1e6, Actor: { Attributes: { [LABEL_INSTANCE]: uuid, [LABEL_NETWORK]: 'berth-p' } } });
      engine.send(0, { Action: 'destroy', Actor: { Attributes: { [LABEL_INSTANCE]: uuid } } });
      await until('the volumes saw the start', () => volumeStarts.callCount === 1);
      await until('the plugs saw the start (a plug reads the container)', () => inspect.callCount === 1);
      assert.deepEqual(volumeStarts.firstCall.args, [uuid]);
      assert.equal(networks.noteCreated.callCount, 1, 'the address book saw the create');
      assert.deepEqual(networks.noteRemoved.firstCall.args, [uuid]);
      assert.equal(volumeStarts.callCount, 1, 'the volumes see starts only');

      // dockerd restarts: the stream ends; the hub connects again, once, and each consumer catches up once.
      engine.streams[0]!.end();
      await until('connected again', () => engine.streams.length === 2 && engine.lists === 2);
      await new Promise((r) => setTimeout(r, 600));
      assert.equal(engine.streams.length, 2, 'one new connection, not one per consumer');
      assert.equal(networks.resetAddressBook.callCount, 2);
      engine.send(1, { Action: 'start', Actor: { Attributes: { [LABEL_INSTANCE]: uuid } } });
      await until('the volumes see events of the new connection', () => volumeStarts.callCount === 2);
    } finally {
      watch.stop();
      hub.stop();
    }
  });

  it('refuses a subscriber after the stream started (it would miss the catch-up)', () => {
    const engine = new FakeEventSource();
    const hub = new DockerEventHub(engine.api, silentLogger());
    hub.subscribe({ actions: ['start'], onEvent: () => undefined });
    hub.start();
    try {
      assert.throws(() => hub.subscribe({ actions: ['start'], onEvent: () => undefined }), /before the stream starts/);
    } finally {
      hub.stop();
    }
  });
});
