import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect, createServer as createNetServer } from 'node:net';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BerthError } from '../../../common/errors.js';
import { readBody } from '../../../common/http-client.js';
import { HttpRegistryClient } from '../../../glance-bridge/registry/http.js';
import { MediaType } from '../../../glance-bridge/registry/manifest.js';
import { parseReference } from '../../../glance-bridge/registry/reference.js';
import { resolveImage } from '../../../glance-bridge/registry/resolve.js';
import { REGISTRY, realRegistryClient } from './helpers.js';

const hasCode = (code: string) => (err: unknown) => err instanceof BerthError && err.code === code;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
async function serve(handler: Handler): Promise<{ server: Server; host: string }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, host: `127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('glance-bridge HttpRegistryClient against the real registry', () => {
  const client = realRegistryClient();
  const repo = { registry: REGISTRY, repository: 'berth/busybox' };

  it('pings, fetches the manifest with its digest header, and streams a blob', async () => {
    await client.ping(REGISTRY);
    const m = await client.fetchManifest(repo, 'latest');
    assert.equal(m.contentType, MediaType.dockerManifest);
    assert.match(m.headerDigest ?? '', /^sha256:/);
    const resolved = await resolveImage(client, parseReference(`${REGISTRY}/berth/busybox:latest`), { os: 'linux', architecture: 'amd64' });
    const blob = await client.fetchBlob(repo, resolved.config.digest);
    assert.equal((await readBody(blob.stream)).length, resolved.config.size);
    const byDigest = await resolveImage(client, parseReference(`${REGISTRY}/berth/busybox@${resolved.digest}`), { os: 'linux', architecture: 'amd64' });
    assert.equal(byDigest.config.digest, resolved.config.digest);
  });

  it('maps unknown repositories, tags and blobs to not-found codes', async () => {
    await assert.rejects(client.fetchManifest({ registry: REGISTRY, repository: 'berth/nope' }, 'latest'), hasCode('MANIFEST_NOT_FOUND'));
    await assert.rejects(client.fetchManifest(repo, 'no-such-tag'), hasCode('MANIFEST_NOT_FOUND'));
    await assert.rejects(client.fetchBlob(repo, `sha256:${'0'.repeat(64)}`), hasCode('BLOB_NOT_FOUND'));
  });

  it('resumes a blob download from the real registry with a Range request after the connection breaks', async () => {
    const resolved = await resolveImage(client, parseReference(`${REGISTRY}/berth/busybox:latest`), { os: 'linux', architecture: 'amd64' });
    const layer = resolved.layers[0]!;
    assert.ok(layer.size > 300_000, `the test layer is ${layer.size} bytes`);
    // A TCP proxy in front of the registry that breaks the first connection 256 KiB into its answers.
    const [regHost, regPort] = REGISTRY.split(':');
    const requests: string[] = [];
    let connections = 0;
    const proxy = createNetServer((inbound) => {
      const first = ++connections === 1;
      let sent = 0;
      const outbound = connect(Number(regPort), regHost!);
      inbound.on('data', (d: Buffer) => {
        requests.push(d.toString('latin1'));
        outbound.write(d);
      });
      outbound.on('data', (d: Buffer) => {
        sent += d.length;
        if (first && sent > 256 * 1024) {
          inbound.destroy();
          outbound.destroy();
          return;
        }
        inbound.write(d);
      });
      inbound.on('error', () => outbound.destroy());
      outbound.on('error', () => inbound.destroy());
      inbound.on('close', () => outbound.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const host = `127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    try {
      const viaProxy = new HttpRegistryClient({
        insecureHosts: [host],
        allowedInternal: [host],
        timeoutMs: 10_000,
        maxManifestBytes: 4 << 20,
        maxBlobBytes: 1 << 30,
        retry: { retries: 3, baseDelayMs: 10, maxDelayMs: 100 },
      });
      const blob = await viaProxy.fetchBlob({ registry: host, repository: 'berth/busybox' }, layer.digest);
      const bytes = await readBody(blob.stream);
      assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, layer.digest);
      assert.ok(connections >= 2, 'a second connection after the break');
      assert.ok(
        requests.some((r) => /^range: bytes=\d+-\r$/im.test(r)),
        'the rest was asked for with Range',
      );
    } finally {
      proxy.close();
    }
  });

  it('enforces the manifest size cap', async () => {
    const tiny = new HttpRegistryClient({ insecureHosts: [REGISTRY], allowedInternal: [REGISTRY], timeoutMs: 10_000, maxManifestBytes: 100, maxBlobBytes: 10 });
    await assert.rejects(tiny.fetchManifest(repo, 'latest'), hasCode('MANIFEST_TOO_LARGE'));
  });
});

describe('glance-bridge HttpRegistryClient auth and redirects (stub servers)', () => {
  const servers: Server[] = [];
  after(() => {
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
  });

  it('follows the bearer token flow and drops Authorization on a cross-origin blob redirect', async () => {
    const seen: { tokenAuth?: string; storageAuth?: string | undefined; scope?: string | null } = {};
    const storage = await serve((req, res) => {
      seen.storageAuth = req.headers.authorization;
      res.end('blob-bytes');
    });
    const auth = await serve((req, res) => {
      const url = new URL(req.url!, 'http://x');
      seen.tokenAuth = req.headers.authorization;
      seen.scope = url.searchParams.get('scope');
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ token: 'tok-123' }));
    });
    const registry = await serve((req, res) => {
      if (req.headers.authorization !== 'Bearer tok-123') {
        res.statusCode = 401;
        res.setHeader('www-authenticate', `Bearer realm="http://${auth.host}/token",service="stub",scope="repository:team/app:pull"`);
        res.end('{"errors":[{"code":"UNAUTHORIZED","message":"auth required"}]}');
        return;
      }
      if (req.url === '/v2/') {
        res.end('{}');
        return;
      }
      res.statusCode = 307;
      res.setHeader('location', `http://${storage.host}/bucket/blob?sig=1`);
      res.end();
    });
    servers.push(storage.server, auth.server, registry.server);
    // Plain HTTP all the way: the storage a redirect leads to must be an insecure host too.
    const client = new HttpRegistryClient({
      insecureHosts: [registry.host, storage.host],
      allowedInternal: ['127.0.0.1'],
      credentials: new Map([[registry.host, { username: 'u', password: 'p' }]]),
      timeoutMs: 5000,
      maxManifestBytes: 1024,
      maxBlobBytes: 1024,
    });
    await client.ping(registry.host);
    const blob = await client.fetchBlob({ registry: registry.host, repository: 'team/app' }, `sha256:${'1'.repeat(64)}`);
    assert.equal((await readBody(blob.stream)).toString(), 'blob-bytes');
    assert.equal(seen.tokenAuth, `Basic ${Buffer.from('u:p').toString('base64')}`);
    assert.equal(seen.scope, 'repository:team/app:pull');
    assert.equal(seen.storageAuth, undefined);
  });

  it('reports refused tokens as REGISTRY_AUTH_FAILED and a web page as not a registry', async () => {
    const auth = await serve((_req, res) => {
      res.statusCode = 401;
      res.end('{"errors":[{"code":"DENIED","message":"bad creds"}]}');
    });
    const registry = await serve((req, res) => {
      res.statusCode = 401;
      res.setHeader('www-authenticate', `Bearer realm="http://${auth.host}/token",service="stub"`);
      res.end();
    });
    const web = await serve((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.statusCode = 404;
      res.end('<html>hello</html>');
    });
    servers.push(auth.server, registry.server, web.server);
    // Connection refused is retried (a registry restarting): quickly here.
    const opts = { timeoutMs: 5000, maxManifestBytes: 1024, maxBlobBytes: 1024, retry: { retries: 2, baseDelayMs: 1, maxDelayMs: 5 } };
    const client = new HttpRegistryClient({ insecureHosts: [registry.host, web.host], allowedInternal: ['127.0.0.1'], ...opts });
    await assert.rejects(
      client.fetchManifest({ registry: registry.host, repository: 'a' }, 'latest'),
      (err: unknown) => hasCode('REGISTRY_AUTH_FAILED')(err) && /DENIED/.test((err as Error).message),
    );
    await assert.rejects(client.ping(web.host), hasCode('REGISTRY_UNREACHABLE'));
    await assert.rejects(client.ping('127.0.0.1:1'), hasCode('REGISTRY_UNREACHABLE'));
  });
});
