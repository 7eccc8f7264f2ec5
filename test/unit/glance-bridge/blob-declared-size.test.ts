import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BerthError } from '../../../common/errors.js';
import { BlobFetcher } from '../../../glance-bridge/import/blob-fetcher.js';
import { HttpRegistryClient } from '../../../glance-bridge/registry/http.js';
import { BlobStore } from '../../../glance-bridge/store/blobs.js';
import { inProcessAgent, serveInProcess, type InProcessServer } from '../../support/in-process.js';

/**
 * A blob download is bounded by the size its manifest declared, not only by the global layer cap
 * ([registry] max_layer_bytes, 10 GiB by default): a registry that keeps sending is cut off where
 * it passes the declared size, and one that announces another size is not read at all.
 */

const DECLARED = 4096;
const CONTENT = randomBytes(DECLARED);
const DIGEST = `sha256:${createHash('sha256').update(CONTENT).digest('hex')}`;
const LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

describe('glance-bridge blob downloads bounded by the declared size', () => {
  let dir: string;
  let store: BlobStore;
  let server: InProcessServer;
  let host: string;
  let handler: (res: ServerResponse) => void;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'berth-declared-'));
    store = new BlobStore(join(dir, 'blobs'));
    await store.init();
    server = serveInProcess((_req, res) => handler(res));
    host = new URL(server.base).host;
  });
  afterEach(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const fetcher = () =>
    new BlobFetcher(
      store,
      new HttpRegistryClient({
        insecureHosts: [host],
        agent: inProcessAgent,
        timeoutMs: 5000,
        maxManifestBytes: 4096,
        maxBlobBytes: 1 << 30,
        retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 },
      }),
    );
  const ensure = () =>
    fetcher().ensure({ registry: host, repository: 'team/app' }, { mediaType: LAYER, digest: DIGEST, size: DECLARED }, { maxBlobBytes: 1 << 30 });

  it('cuts off a body (no Content-Length) that goes on past the declared size, naming digest, declared and received sizes', async () => {
    // 64 MiB, chunked: without the bound, all of it would be read before the size is compared.
    const total = 64 * 1024 * 1024;
    let sent = 0;
    let closed = false;
    handler = (res) => {
      res.on('close', () => {
        closed = true;
      });
      const chunk = Buffer.alloc(64 * 1024, 1);
      const pump = (): void => {
        while (sent < total && !closed) {
          sent += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        if (!closed) res.end();
      };
      pump();
    };
    await assert.rejects(ensure(), (err: unknown) => {
      assert.ok(err instanceof BerthError);
      assert.equal(err.code, 'BLOB_SIZE_MISMATCH', err.message);
      assert.match(err.message, new RegExp(`${DIGEST}.*${DECLARED} bytes`));
      assert.equal(err.details.digest, DIGEST);
      assert.equal(err.details.declared, DECLARED);
      const received = Number(err.details.received);
      assert.ok(received > DECLARED && received <= DECLARED + 64 * 1024, `received ${received}`);
      return true;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(sent < total, `the registry sent all ${sent} bytes: the download was not cut off`);
    assert.equal(await store.has(DIGEST), false);
    assert.deepEqual(readdirSync(join(dir, 'blobs', 'tmp')), []);
  });

  it('refuses a Content-Length other than the declared size before reading the body', async () => {
    handler = (res) => {
      res.setHeader('content-length', String(DECLARED * 1000));
      res.write(CONTENT);
    };
    await assert.rejects(ensure(), (err: unknown) => {
      assert.ok(err instanceof BerthError);
      assert.equal(err.code, 'BLOB_SIZE_MISMATCH', err.message);
      assert.match(err.message, /Content-Length/);
      assert.equal(err.details.declared, DECLARED);
      assert.equal(err.details.announced, DECLARED * 1000);
      return true;
    });
  });

  it('still stores a blob of exactly the declared size', async () => {
    handler = (res) => {
      res.setHeader('content-length', String(DECLARED));
      res.end(CONTENT);
    };
    assert.equal(await ensure(), 'fetched');
    assert.equal(await store.size(DIGEST), DECLARED);
  });
});
