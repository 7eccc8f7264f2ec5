import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { PassThrough } from 'node:stream';
import Koa from 'koa';
import { inject, inProcessFetch, inProcessRequest, serveInProcess } from '../../support/in-process.js';

describe('test support: in-process HTTP', () => {
  it('gives koa a request with method, url, headers, a loopback peer and plain HTTP', async () => {
    const app = new Koa();
    app.use((ctx) => {
      ctx.body = { method: ctx.method, url: ctx.url, h: ctx.get('x-h'), ip: ctx.ip, protocol: ctx.protocol, host: ctx.host };
    });
    const res = await inject(app.callback(), { method: 'DELETE', path: '/a?b=1', headers: { 'x-h': 'v' } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /json/);
    assert.deepEqual(res.json(), { method: 'DELETE', url: '/a?b=1', h: 'v', ip: '127.0.0.1', protocol: 'http', host: 'in-process.test' });
  });

  it('sends a byte body with content-length and an iterable body chunked, read with backpressure', async () => {
    const seen: Array<{ length: string | undefined; te: string | undefined; bytes: number }> = [];
    let produced = 0;
    const app = new Koa();
    app.use(async (ctx) => {
      let bytes = 0;
      for await (const chunk of ctx.req) {
        bytes += (chunk as Buffer).length;
        await delay(1);
        // The sender is held back: it never runs far ahead of what the app has read.
        assert.ok(produced - bytes <= 4 * 1024 * 1024, `sent ${produced}, read ${bytes}`);
      }
      seen.push({ length: ctx.get('content-length') || undefined, te: ctx.get('transfer-encoding') || undefined, bytes });
      ctx.status = 204;
    });
    await inject(app.callback(), { method: 'PUT', body: Buffer.alloc(1000) });
    async function* chunks() {
      for (let i = 0; i < 64; i++) {
        produced += 256 * 1024;
        yield Buffer.alloc(256 * 1024);
      }
    }
    const res = await inject(app.callback(), { method: 'PUT', body: chunks() });
    assert.equal(res.status, 204);
    assert.deepEqual(seen, [
      { length: '1000', te: undefined, bytes: 1000 },
      { length: undefined, te: 'chunked', bytes: 64 * 256 * 1024 },
    ]);
  });

  it('collects a streamed response body, and fetch-like calls reach a served origin only while it is open', async () => {
    const app = new Koa();
    app.use((ctx) => {
      const body = new PassThrough();
      ctx.body = body;
      body.write('one,');
      setTimeout(() => body.end('two'), 10);
    });
    const server = serveInProcess(app.callback());
    const res = await inProcessFetch(`${server.base}/s`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'one,two');
    assert.equal(await (await server.fetch('/s')).text(), 'one,two');
    await server.close();
    await assert.rejects(inProcessFetch(`${server.base}/s`), /no in-process listener/);
  });

  it('tears down the connections still open when the server is closed', async () => {
    const app = new Koa();
    app.use((ctx) => {
      const body = new PassThrough();
      body.write('first');
      ctx.body = body;
    });
    const server = serveInProcess(app.callback());
    const ended = new Promise<string>((resolve) => {
      const req = inProcessRequest(`${server.base}/hang`, (res) => {
        res.once('data', () => void server.close());
        res.on('error', () => resolve('error'));
        res.on('close', () => resolve('close'));
      });
      req.on('error', () => resolve('error'));
      req.end();
    });
    assert.ok(['close', 'error'].includes(await ended));
  });
});
