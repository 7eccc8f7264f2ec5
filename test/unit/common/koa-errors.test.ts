import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import Koa from 'koa';
import sinon from 'sinon';
import { agentError } from '../../../agent/client/errors.js';
import { BerthError, commonError } from '../../../common/errors.js';
import { errorMiddleware, logAppErrors } from '../../../common/koa.js';
import type { Logger } from '../../../common/log.js';
import { inProcessFetch, inProcessRequest, serveInProcess } from '../../support/in-process.js';

function fakeLog(): Logger & { debug: sinon.SinonSpy; error: sinon.SinonSpy } {
  return { debug: sinon.spy(), error: sinon.spy(), info: sinon.spy(), warn: sinon.spy() } as unknown as Logger & {
    debug: sinon.SinonSpy;
    error: sinon.SinonSpy;
  };
}

/** An app whose body streams one chunk, then waits; `then` decides what happens next. */
function streamingApp(log: Logger, then: (body: PassThrough) => void): Koa {
  const app = new Koa();
  logAppErrors(app, log);
  app.use((ctx) => {
    const body = new PassThrough();
    body.write(Buffer.alloc(64 * 1024, 1));
    ctx.body = body;
    setTimeout(() => then(body), 50);
  });
  return app;
}

async function getAndHangUp(base: string): Promise<void> {
  await new Promise<void>((resolve) => {
    const req = inProcessRequest(`${base}/blob`, (res) =>
      res.once('data', () => {
        req.destroy();
        resolve();
      }),
    );
    req.on('error', () => resolve());
    req.end();
  });
}

describe('common logAppErrors', () => {
  it('logs a client hanging up during a streamed response at debug, not as an error nor on stderr', async () => {
    const log = fakeLog();
    const stderr = sinon.spy(process.stderr, 'write');
    const server = serveInProcess(streamingApp(log, () => undefined).callback());
    try {
      await getAndHangUp(server.base);
      for (let i = 0; i < 50 && !log.debug.called; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(log.debug.called, true);
      for (const call of log.debug.getCalls()) assert.match(String(call.args[1]), /client went away/);
      assert.equal(log.error.called, false);
      assert.equal(stderr.called, false);
    } finally {
      stderr.restore();
      await server.close();
    }
  });

  it('logs any other failure of a response body as an error', async () => {
    const log = fakeLog();
    const server = serveInProcess(streamingApp(log, (body) => body.destroy(new Error('disk read failed'))).callback());
    try {
      await new Promise<void>((resolve) => {
        const req = inProcessRequest(`${server.base}/blob`, (res) => {
          res.resume();
          res.on('close', () => resolve());
          res.on('error', () => resolve());
        });
        req.on('error', () => resolve());
        req.end();
      });
      for (let i = 0; i < 50 && !log.error.called; i++) await new Promise((r) => setTimeout(r, 20));
      assert.equal(log.error.called, true);
      for (const call of log.error.getCalls()) assert.match((call.args[0] as { err: Error }).err.message, /disk read failed/);
      assert.equal(log.debug.called, false);
    } finally {
      await server.close();
    }
  });
});

describe('common errorMiddleware', () => {
  async function answer(err: Error): Promise<{ status: number; body: { error: { code: string; message: string } } }> {
    const app = new Koa();
    app.use(errorMiddleware(fakeLog()));
    app.use(() => {
      throw err;
    });
    const server = serveInProcess(app.callback());
    try {
      const res = await inProcessFetch(`${server.base}/x`);
      return { status: res.status, body: (await res.json()) as { error: { code: string; message: string } } };
    } finally {
      await server.close();
    }
  }

  it('shows an exposed error as it is, 5xx included', async () => {
    assert.deepEqual(await answer(agentError('RUNTIME_ERROR', 'could not start instance x')), {
      status: 500,
      body: { error: { code: 'RUNTIME_ERROR', message: 'could not start instance x', details: {} } },
    });
    assert.equal((await answer(commonError('BODY_TOO_LARGE', 'too big'))).status, 413);
    assert.equal((await answer(commonError('SERVICE_UNREACHABLE', 'away'))).body.error.code, 'SERVICE_UNREACHABLE');
  });

  it('hides any other 5xx behind INTERNAL_ERROR', async () => {
    assert.deepEqual(await answer(new BerthError('DB_BROKEN', 'password=hunter2 rejected', { status: 500 })), {
      status: 500,
      body: { error: { code: 'INTERNAL_ERROR', message: 'internal error', details: {} } },
    });
    assert.equal((await answer(new Error('boom'))).body.error.code, 'INTERNAL_ERROR');
  });

  it('answers a foreign error Koa marks exposed as BAD_REQUEST', async () => {
    const err = Object.assign(new Error('bad header'), { status: 400, expose: true });
    assert.deepEqual(await answer(err), { status: 400, body: { error: { code: 'BAD_REQUEST', message: 'bad header', details: {} } } });
  });
});
