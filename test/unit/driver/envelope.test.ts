import { strict as assert } from 'node:assert';
import { decodeBody, encodeEnvelope, parseRequest, MalformedMessage } from '../../../driver/rpc/envelope.js';
import { pyJson } from '../../../driver/rpc/pyjson.js';
import { fixture } from '../../support/fixtures.js';

describe('oslo envelope', () => {
  it('decodes every captured request to the message the fixture records', () => {
    for (const name of [
      'cast-request',
      'call-request',
      'call-request-with-call-monitor',
      'call-request-namespace-baseapi',
      'fanout-cast-request',
      'compute-build_and_run_instance-cast',
    ]) {
      const f = fixture(`oslo/${name}.json`);
      assert.deepEqual(decodeBody(Buffer.from(f.body)), f.message, name);
    }
  });

  it('encodes byte for byte as oslo does (Python json.dumps spacing, ASCII escapes)', () => {
    const f = fixture('oslo/call-reply.json');
    assert.equal(encodeEnvelope(f.message).toString(), f.body);
    // Floats like 1.0 lose their ".0" in JavaScript, so the large fixtures compare by value.
    const build = fixture('oslo/compute-build_and_run_instance-cast.json');
    assert.deepEqual(decodeBody(encodeEnvelope(build.message)), build.message);
  });

  it('escapes non-ASCII like Python', () => {
    assert.equal(pyJson({ name: 'café ☕' }), '{"name": "caf\\u00e9 \\u2615"}');
  });

  it('accepts a bare message without envelope', () => {
    assert.deepEqual(decodeBody(Buffer.from('{"method": "ping", "args": {}}')), { method: 'ping', args: {} });
  });

  it('rejects bad JSON, non-objects and foreign envelope versions with a reason', () => {
    assert.throws(() => decodeBody(Buffer.from('{nope')), /not JSON/);
    assert.throws(() => decodeBody(Buffer.from('[1,2]')), /not a JSON object/);
    assert.throws(() => decodeBody(Buffer.from('{"oslo.version": "3.0", "oslo.message": "{}"}')), /envelope version/);
    assert.throws(() => decodeBody(Buffer.from('{"oslo.version": "2.0", "oslo.message": 5}')), MalformedMessage);
  });

  it('splits context, call fields and unique id from a call', () => {
    const req = parseRequest(fixture('oslo/call-request-with-call-monitor.json').message);
    assert.equal(req.method, 'cache_images');
    assert.ok(req.reply);
    assert.equal(req.reply.monitorTimeout, 2);
    assert.match(req.reply.replyQueue, /^reply_[0-9a-f]{32}$/);
    assert.ok(typeof req.context.request_id === 'string');
    assert.ok(!('_context_request_id' in req.args));
  });

  it('keeps a context a plain object whatever key names a sender uses (no prototype through _context___proto__)', () => {
    // As decoded from JSON: "__proto__" is then an own key of the message, as a broker delivers it.
    const msg = JSON.parse('{"method": "x", "args": {}, "_context___proto__": {"is_admin": true, "polluted": 1}, "_context_project_id": "p1"}') as Record<
      string,
      unknown
    >;
    const req = parseRequest(msg);
    assert.equal(Object.getPrototypeOf(req.context), Object.prototype);
    assert.equal(req.context.is_admin, undefined);
    assert.equal((req.context as Record<string, unknown>).polluted, undefined);
    assert.deepEqual(Object.getOwnPropertyDescriptor(req.context, '__proto__')?.value, { is_admin: true, polluted: 1 });
    assert.equal(req.context.project_id, 'p1');
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('refuses context fields Berth reads when they have the wrong type, keeping the reply address of a call', () => {
    for (const [key, value] of [
      ['project_id', 5],
      ['user_id', { id: 'u' }],
      ['roles', 'admin'],
      ['roles', [1]],
      ['is_admin', 'true'],
      ['request_id', 42],
    ] as const) {
      try {
        parseRequest({ method: 'x', args: {}, [`_context_${key}`]: value, _msg_id: 'a', _reply_q: 'reply_b' });
        assert.fail(`expected ${key} = ${JSON.stringify(value)} to be refused`);
      } catch (err) {
        assert.ok(err instanceof MalformedMessage, String(err));
        assert.match(err.message, new RegExp(`_context_${key} has the wrong type`));
        assert.deepEqual((err as unknown as { reply: unknown }).reply, { msgId: 'a', replyQueue: 'reply_b', monitorTimeout: null });
      }
    }
    assert.equal(parseRequest({ method: 'x', _context_project_id: null, _context_roles: ['member'], _context_is_admin: false }).context.project_id, null);
  });

  it('treats a cast as having no reply and defaults version to 1.0', () => {
    const req = parseRequest({ method: 'x', args: {} });
    assert.equal(req.reply, null);
    assert.equal(req.version, '1.0');
  });

  it('refuses wrong types of method and args, keeping the reply address of a call', () => {
    assert.throws(() => parseRequest({ method: 5 }), /method/);
    try {
      parseRequest({ method: 'x', args: [], _msg_id: 'a', _reply_q: 'reply_b' });
      assert.fail('expected a throw');
    } catch (err) {
      assert.match((err as Error).message, /args/);
      assert.deepEqual((err as { reply: unknown }).reply, { msgId: 'a', replyQueue: 'reply_b', monitorTimeout: null });
    }
  });
});
