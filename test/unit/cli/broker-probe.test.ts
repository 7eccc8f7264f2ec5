import assert from 'node:assert/strict';
import { BerthError } from '../../../common/errors.js';
import { rabbitDefaults, type openBrokerConnection } from '../../../driver/rpc/broker-connect.js';
import { probeBroker } from '../../../tools/cli/broker-probe.js';

type Connect = typeof openBrokerConnection;

/** The CLI's one plain attempt at the broker, with the connection attempt handed in: no socket. */
describe("the CLI's broker probe", () => {
  const fails = (err: Partial<NodeJS.ErrnoException>): Connect =>
    (async () => Promise.reject(Object.assign(new Error(err.message ?? 'x'), err))) as unknown as Connect;

  it('a broker that accepts and never answers: BROKER_UNREACHABLE, named a timeout, once the time is up', async () => {
    const never = (() => new Promise(() => undefined)) as unknown as Connect;
    const t0 = Date.now();
    await assert.rejects(probeBroker('rabbit://guest:secret@broker.test:5672/', rabbitDefaults(), 200, never), (err: unknown) => {
      assert.ok(err instanceof BerthError);
      assert.equal(err.code, 'BROKER_UNREACHABLE');
      assert.match(err.message, /cannot reach the broker at rabbit:\/\/broker\.test:5672\/: no answer within 0\.2s \(timeout\)/);
      assert.doesNotMatch(err.message, /secret/);
      return true;
    });
    assert.ok(Date.now() - t0 >= 150);
  });

  it('names a refused connection, a refused password and an unknown host', async () => {
    await assert.rejects(probeBroker('rabbit://h.test/', rabbitDefaults(), 1000, fails({ code: 'ECONNREFUSED' })), /connection refused/);
    await assert.rejects(
      probeBroker('rabbit://h.test/', rabbitDefaults(), 1000, fails({ message: 'Handshake terminated by server: 403 (ACCESS-REFUSED)' })),
      (err: unknown) => {
        assert.ok(err instanceof BerthError && err.code === 'BROKER_AUTH_REFUSED');
        return true;
      },
    );
    await assert.rejects(probeBroker('rabbit://h.test/', rabbitDefaults(), 1000, fails({ code: 'ENOTFOUND' })), /unknown host \(ENOTFOUND\)/);
  });

  it('a broker that answers: the connection is closed again', async () => {
    let closed = false;
    const ok = (async () => ({ close: async () => void (closed = true) })) as unknown as Connect;
    await probeBroker('rabbit://h.test/', rabbitDefaults(), 1000, ok);
    assert.ok(closed);
  });
});
