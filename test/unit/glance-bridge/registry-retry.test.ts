import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { BerthError } from '../../../common/errors.js';
import { readBody } from '../../../common/http-client.js';
import { HttpRegistryClient } from '../../../glance-bridge/registry/http.js';
import { retryDelay, type RetryPolicy } from '../../../glance-bridge/registry/retry.js';
import { inProcessAgent, serveInProcess } from '../../support/in-process.js';

const BLOB = randomBytes(3 * 1024 * 1024 + 77);
const DIGEST = `sha256:${createHash('sha256').update(BLOB).digest('hex')}`;
const REPO = 'team/app';

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

/** Stub servers the current test opened, closed after it. */
const open: Array<{ close(): Promise<void> }> = [];

/** `handler` served in-process; resolves with its host. */
async function serve(handler: RequestListener): Promise<string> {
  const server = serveInProcess(handler);
  open.push(server);
  return new URL(server.base).host;
}

/** A stub registry served in-process; `handler` sees each blob request with its 1-based number. */
async function stubRegistry(handler: Handler): Promise<{ host: string; requests: IncomingMessage[] }> {
  const requests: IncomingMessage[] = [];
  const host = await serve((req, res) => {
    if (req.url === '/v2/') {
      res.end('{}');
      return;
    }
    requests.push(req);
    handler(req, res, requests.length);
  });
  return { host, requests };
}

/** Sends the blob from `from` (a 206 when the request had a Range), or all of it. */
function sendBlob(req: IncomingMessage, res: ServerResponse, opts: { honourRange?: boolean; cutAfter?: number } = {}): void {
  const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const from = m && opts.honourRange !== false ? Number(m[1]) : 0;
  res.statusCode = from ? 206 : 200;
  if (from) res.setHeader('content-range', `bytes ${from}-${BLOB.length - 1}/${BLOB.length}`);
  res.setHeader('content-length', String(BLOB.length - from));
  const body = BLOB.subarray(from);
  if (opts.cutAfter === undefined) {
    res.end(body);
    return;
  }
  res.write(body.subarray(0, opts.cutAfter), () => res.socket?.destroy());
}

describe('glance-bridge registry client: retries and resumed downloads', () => {
  const delays: number[] = [];
  const policy: RetryPolicy = {
    retries: 3,
    baseDelayMs: 100,
    maxDelayMs: 1000,
    sleep: async (ms) => {
      delays.push(ms);
    },
  };
  const client = (host: string, timeoutMs = 5000) =>
    new HttpRegistryClient({ insecureHosts: [host], agent: inProcessAgent, timeoutMs, maxManifestBytes: 4096, maxBlobBytes: 1 << 30, retry: policy });
  const fetchAll = async (host: string, timeoutMs?: number) =>
    readBody((await client(host, timeoutMs).fetchBlob({ registry: host, repository: REPO }, DIGEST)).stream);

  beforeEach(() => {
    delays.length = 0;
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
  });

  it('resumes a download that breaks off with a Range request from the byte where it stopped', async () => {
    const reg = await stubRegistry((req, res, n) => sendBlob(req, res, n === 1 ? { cutAfter: 1024 * 1024 } : {}));
    const bytes = await fetchAll(reg.host);
    assert.ok(bytes.equals(BLOB));
    assert.equal(reg.requests.length, 2);
    const from = Number(/^bytes=(\d+)-$/.exec(reg.requests[1]!.headers.range ?? '')?.[1]);
    assert.ok(from > 0 && from <= 1024 * 1024, `resumed from ${reg.requests[1]!.headers.range}`);
    assert.equal(delays.length, 1);
  });

  it('skips what it has when the registry ignores Range and sends the whole blob again', async () => {
    const reg = await stubRegistry((req, res, n) => sendBlob(req, res, n === 1 ? { cutAfter: 500_000 } : { honourRange: false }));
    assert.ok((await fetchAll(reg.host)).equals(BLOB));
    assert.equal(reg.requests.length, 2);
  });

  it('resumes a download that stalls, once the request timeout passes', async () => {
    const reg = await stubRegistry((req, res, n) => {
      if (n > 1) {
        sendBlob(req, res);
        return;
      }
      res.setHeader('content-length', String(BLOB.length));
      res.write(BLOB.subarray(0, 64 * 1024)); // then nothing more, connection kept open
    });
    assert.ok((await fetchAll(reg.host, 300)).equals(BLOB));
    assert.match(reg.requests[1]!.headers.range ?? '', /^bytes=\d+-$/);
  });

  it('gives up after the retries when every attempt breaks off without progress', async () => {
    const reg = await stubRegistry((req, res) => sendBlob(req, res, { cutAfter: 10 }));
    await assert.rejects(
      fetchAll(reg.host),
      (err: unknown) => err instanceof BerthError && err.code === 'REGISTRY_UNREACHABLE' && /3 attempts to resume/.test(err.message),
    );
    assert.equal(reg.requests.length, 4, 'the first request and three resumes');
  });

  it('does not count a fault after real progress against the retries', async () => {
    // Each connection brings 1 MiB, then breaks: four faults, more than the three retries, and still whole.
    const reg = await stubRegistry((req, res) => sendBlob(req, res, { cutAfter: 1024 * 1024 + 1 }));
    assert.ok((await fetchAll(reg.host)).equals(BLOB));
    assert.equal(reg.requests.length, 4);
  });

  it('retries 503 and 429 with back-off (as long as Retry-After asks), and not 404', async () => {
    const reg = await stubRegistry((req, res, n) => {
      if (n === 1) {
        res.statusCode = 503;
        res.end();
        return;
      }
      if (n === 2) {
        res.statusCode = 429;
        res.setHeader('retry-after', '0.25');
        res.end();
        return;
      }
      sendBlob(req, res);
    });
    assert.ok((await fetchAll(reg.host)).equals(BLOB));
    assert.equal(delays.length, 2);
    assert.ok(delays[0]! >= 50 && delays[0]! <= 100, `first back-off ${delays[0]} ms`);
    assert.equal(delays[1], 250);
    const missing = await stubRegistry((_req, res) => {
      res.statusCode = 404;
      res.end('{"errors":[{"code":"BLOB_UNKNOWN","message":"no"}]}');
    });
    await assert.rejects(fetchAll(missing.host), (err: unknown) => err instanceof BerthError && err.code === 'BLOB_NOT_FOUND');
    assert.equal(missing.requests.length, 1);
  });

  it('refuses a resume answered from the wrong offset instead of splicing bytes', async () => {
    const reg = await stubRegistry((req, res, n) => {
      if (n === 1) {
        sendBlob(req, res, { cutAfter: 200_000 });
        return;
      }
      res.statusCode = 206;
      res.setHeader('content-range', `bytes 0-${BLOB.length - 1}/${BLOB.length}`);
      res.end(BLOB);
    });
    await assert.rejects(fetchAll(reg.host), (err: unknown) => err instanceof BerthError && err.code === 'REGISTRY_ERROR' && /Content-Range/.test(err.message));
  });

  it('retries a failed resume within the same count of faults, not in a nested loop of its own', async () => {
    // The connection breaks, then every request fails with 503: 1 + 3 requests in all, not 1 + 3 × 4.
    const reg = await stubRegistry((req, res, n) => {
      if (n === 1) {
        sendBlob(req, res, { cutAfter: 100_000 });
        return;
      }
      res.statusCode = 503;
      res.end();
    });
    await assert.rejects(fetchAll(reg.host), (err: unknown) => err instanceof BerthError && err.code === 'REGISTRY_ERROR');
    assert.equal(reg.requests.length, 4);
  });

  it('retries a ping answered with 503, and ignores an empty Retry-After', async () => {
    let pings = 0;
    const host = await serve((_req, res) => {
      if (++pings < 3) {
        res.statusCode = 503;
        res.setHeader('retry-after', '');
        res.end();
        return;
      }
      res.end('{}');
    });
    await client(host).ping(host);
    assert.equal(pings, 3);
    assert.ok(
      delays.every((d) => d >= 50),
      `back-off, not an immediate retry: ${delays.join(', ')}`,
    );
  });

  it('retries a token service that answers 503', async () => {
    let tokenRequests = 0;
    const auth = await serve((_req, res) => {
      if (++tokenRequests === 1) {
        res.statusCode = 503;
        res.end();
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end('{"token":"t"}');
    });
    const realm = `http://${auth}/token`;
    const reg = await stubRegistry((req, res) => {
      if (req.headers.authorization !== 'Bearer t') {
        res.statusCode = 401;
        res.setHeader('www-authenticate', `Bearer realm="${realm}",service="stub"`);
        res.end();
        return;
      }
      sendBlob(req, res);
    });
    assert.ok((await fetchAll(reg.host)).equals(BLOB));
    assert.equal(tokenRequests, 2);
  });

  it('retries an unreachable registry, then says so', async () => {
    const gone = serveInProcess(() => undefined);
    await gone.close();
    const host = new URL(gone.base).host;
    await assert.rejects(client(host).ping(host), (err: unknown) => err instanceof BerthError && err.code === 'REGISTRY_UNREACHABLE');
    assert.equal(delays.length, 3);
  });

  it('backs off exponentially with jitter, capped', () => {
    const p: RetryPolicy = { retries: 10, baseDelayMs: 100, maxDelayMs: 1000 };
    for (let attempt = 1; attempt <= 6; attempt++) {
      const full = Math.min(1000, 100 * 2 ** (attempt - 1));
      const d = retryDelay(p, attempt);
      assert.ok(d >= full / 2 && d <= full, `attempt ${attempt}: ${d}`);
    }
  });
});
