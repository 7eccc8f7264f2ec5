import { strict as assert } from 'node:assert';
import { Dispatcher, versionCompatible, type Endpoint } from '../../../driver/rpc/dispatcher.js';
import { parseRequest } from '../../../driver/rpc/envelope.js';
import { RpcFailure, serializeFailure } from '../../../driver/rpc/failure.js';
import { baseApiEndpoint } from '../../../driver/compute/endpoint.js';
import { fixture } from '../../support/fixtures.js';

// Named as the endpoint class of the server that produced the fixtures.
const compute: Endpoint = {
  name: 'ComputeEndpoint',
  namespace: null,
  version: '6.1',
  methods: {
    get_console_output: { required: ['instance', 'tail_length'], handler: () => 'out' },
    _private: { required: [], handler: () => 'secret' },
  },
};
const dispatcher = new Dispatcher([compute, baseApiEndpoint()]);

function failureOf(fn: () => unknown): RpcFailure {
  try {
    fn();
  } catch (err) {
    if (err instanceof RpcFailure) return err;
    throw err;
  }
  assert.fail('expected an RpcFailure');
}

/** The failure the fixture's reply carries, parsed. */
function expectedFailure(name: string): Record<string, unknown> {
  const reply = fixture(`oslo/${name}.json`).message;
  return JSON.parse(reply.failure as string) as Record<string, unknown>;
}

function assertSameFailure(f: RpcFailure, fixtureName: string): void {
  const got = JSON.parse(serializeFailure(f)) as Record<string, unknown>;
  const want = expectedFailure(fixtureName);
  for (const key of ['class', 'module', 'message', 'args', 'kwargs']) assert.deepEqual(got[key], want[key], `${fixtureName}: ${key}`);
  assert.ok(Array.isArray(got.tb) && (got.tb as string[]).every((l) => l.endsWith('\n')));
}

describe('dispatcher', () => {
  it('implements oslo version compatibility', () => {
    assert.ok(versionCompatible('6.1', '6.0'));
    assert.ok(versionCompatible('6.1', '6.1'));
    assert.ok(!versionCompatible('6.1', '6.2'));
    assert.ok(!versionCompatible('6.1', '7.0'));
    assert.ok(!versionCompatible('6.1', '5.13'));
    assert.ok(versionCompatible('6.1.2', '6.1.1'));
    assert.ok(!versionCompatible('6.1', 'x'));
  });

  it('answers an unknown method with NoSuchMethod exactly as oslo does', () => {
    const req = parseRequest({ method: 'no_such_method', args: {}, version: '6.0' });
    assertSameFailure(
      failureOf(() => dispatcher.resolve(req)),
      'call-reply-failure-no-such-method',
    );
  });

  it('refuses private methods with NoSuchMethod', () => {
    const f = failureOf(() => dispatcher.resolve(parseRequest({ method: '_private', args: {}, version: '6.0' })));
    assert.equal(f.className, 'NoSuchMethod');
  });

  it('answers a too-new version with UnsupportedVersion', () => {
    const req = parseRequest({ method: 'get_console_output', args: {}, version: '7.0' });
    assertSameFailure(
      failureOf(() => dispatcher.resolve(req)),
      'call-reply-failure-unsupported-version',
    );
  });

  it('reports a namespace nobody serves as UnsupportedVersion', () => {
    const f = failureOf(() => dispatcher.resolve(parseRequest({ method: 'ping', args: {}, namespace: 'nope', version: '1.0' })));
    assert.equal(f.className, 'UnsupportedVersion');
  });

  it('raises the TypeError Python would for a missing argument', () => {
    const req = parseRequest({ method: 'get_console_output', args: { instance: {} }, version: '6.0' });
    assertSameFailure(
      failureOf(() => dispatcher.resolve(req)),
      'call-reply-failure-type-error',
    );
  });

  it('drops unknown arguments and routes the baseapi ping', async () => {
    const req = parseRequest(fixture('oslo/call-request-namespace-baseapi.json').message);
    const found = dispatcher.resolve(req);
    const result = await found.spec.handler(req.context, found.args);
    assert.deepEqual(result, fixture('oslo/call-reply-namespace-baseapi.json').message.result);
    const extra = dispatcher.resolve(parseRequest({ method: 'get_console_output', args: { instance: 1, tail_length: 2, bogus: 3 }, version: '6.0' }));
    assert.deepEqual(extra.args, { instance: 1, tail_length: 2 });
  });

  it("hands the checked arguments to the endpoint's deserializer once, before the handler", async () => {
    const seen: Array<Record<string, unknown>> = [];
    const ep: Endpoint = {
      name: 'ComputeManager',
      namespace: null,
      version: '6.2',
      methods: { stop_instance: { required: ['instance'], handler: (_ctx, args) => args.instance } },
      deserialize: (args) => {
        seen.push(args);
        return { ...args, instance: { decoded: args.instance } };
      },
    };
    const found = new Dispatcher([ep]).resolve(parseRequest({ method: 'stop_instance', args: { instance: 'i-1', bogus: 1 }, version: '6.0' }));
    assert.deepEqual(seen, [{ instance: 'i-1' }]);
    assert.deepEqual(await found.spec.handler({}, found.args), { decoded: 'i-1' });
  });

  it('serializes nova exceptions with kwargs and code as the fixture does', () => {
    const want = expectedFailure('call-reply-failure-nova-exception');
    const f = new RpcFailure('InstanceNotFound', 'nova.exception', want.message as string, want.kwargs as Record<string, unknown>);
    assertSameFailure(f, 'call-reply-failure-nova-exception');
  });
});
