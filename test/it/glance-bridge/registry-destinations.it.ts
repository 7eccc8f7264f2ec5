import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { BerthError } from '../../../common/errors.js';
import { readBody } from '../../../common/http-client.js';
import type { Credentials } from '../../../common/registry-credentials.js';
import { HttpRegistryClient, type HttpRegistryOptions } from '../../../glance-bridge/registry/http.js';
import type { Resolver } from '../../../glance-bridge/registry/destination.js';

/**
 * What a registry a tenant names can make the importer do with the network: where it connects
 * (internal addresses refused unless allowlisted), where credentials go (their own registry only),
 * and what of other services' answers reaches the tenant (nothing). The stub servers are on
 * loopback, so each test allowlists exactly the stubs it means to be reachable: a registry on
 * 127.0.0.1 and, for "internal" targets, a second stub on 127.0.0.2 that must see no request.
 */

const DIGEST = `sha256:${'a'.repeat(64)}`;
const REPO = 'team/app';
const SECRET = 'INTERNAL-SECRET-7f3a';
const CREDS: Credentials = { username: 'alice', password: 's3cret' };
const BASIC = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`;

interface Stub {
  host: string;
  port: number;
  requests: IncomingMessage[];
}
const open: Array<ReturnType<typeof createServer>> = [];

/** A stub HTTP server (HTTPS with `tls`) on `address`, recording its requests. */
async function stub(
  address: string,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  tls?: { key: Buffer; cert: Buffer },
  port = 0,
): Promise<Stub> {
  const requests: IncomingMessage[] = [];
  const listener: RequestListener = (req, res) => {
    requests.push(req);
    handler(req, res);
  };
  const server = tls ? createTlsServer(tls, listener) : createServer(listener);
  open.push(server);
  await new Promise<void>((resolve) => server.listen(port, address, resolve));
  const bound = (server.address() as AddressInfo).port;
  return { host: `${address}:${bound}`, port: bound, requests };
}

/** A registry that challenges for a Bearer token from `realm` and serves anything once it has one. */
function bearerRegistry(realm: () => string, token = 'tok'): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (req.headers.authorization !== `Bearer ${token}`) {
      res.statusCode = 401;
      res.setHeader('www-authenticate', `Bearer realm="${realm()}",service="stub"`);
      res.end();
      return;
    }
    res.end('blob');
  };
}

const tokenService =
  (token = 'tok') =>
  (_req: IncomingMessage, res: ServerResponse) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ token }));
  };

const client = (registry: string, opts: Partial<HttpRegistryOptions> = {}) =>
  new HttpRegistryClient({
    insecureHosts: [registry],
    allowedInternal: [registry],
    timeoutMs: 5000,
    maxManifestBytes: 4096,
    maxBlobBytes: 1 << 20,
    retry: { retries: 0, baseDelayMs: 1, maxDelayMs: 1 },
    ...opts,
  });

const failsWith = (code: string, not?: RegExp) => (err: unknown) => {
  assert.ok(err instanceof BerthError, String(err));
  assert.equal(err.code, code, err.message);
  if (not) {
    assert.doesNotMatch(err.message, not);
    assert.doesNotMatch(JSON.stringify(err.details), not);
  }
  return true;
};

const fetchBlob = async (c: HttpRegistryClient, registry: string) =>
  (await readBody((await c.fetchBlob({ registry, repository: REPO }, DIGEST)).stream)).toString();

describe('glance-bridge registry client: destinations and credentials', () => {
  afterEach(async () => {
    await Promise.all(
      open.splice(0).map((s) => {
        s.closeAllConnections();
        return new Promise((resolve) => s.close(resolve));
      }),
    );
  });

  describe('internal destinations', () => {
    it('refuses a token realm on an internal address that is not allowlisted, without connecting to it', async () => {
      const realm = await stub('127.0.0.2', tokenService());
      const reg = await stub(
        '127.0.0.1',
        bearerRegistry(() => `http://${realm.host}/token`),
      );
      await assert.rejects(fetchBlob(client(reg.host), reg.host), failsWith('REGISTRY_DESTINATION_REFUSED'));
      assert.equal(realm.requests.length, 0, 'the realm was connected to');
    });

    it("refuses a realm whose name resolves to the metadata address, at the connection's own lookup", async () => {
      const looked: string[] = [];
      const resolver: Resolver = async (name) => {
        looked.push(name);
        return name === 'metadata.test' ? [{ address: '169.254.169.254', family: 4 }] : [];
      };
      const reg = await stub(
        '127.0.0.1',
        bearerRegistry(() => 'http://metadata.test/latest/meta-data/iam'),
      );
      await assert.rejects(fetchBlob(client(reg.host, { resolver }), reg.host), failsWith('REGISTRY_DESTINATION_REFUSED', /169\.254/));
      assert.deepEqual(looked, ['metadata.test']);
    });

    it('refuses a name with any internal address among its addresses (the socket could try each)', async () => {
      const resolver: Resolver = async () => [
        { address: '8.8.8.8', family: 4 },
        { address: '10.0.0.5', family: 4 },
      ];
      const reg = await stub(
        '127.0.0.1',
        bearerRegistry(() => 'http://mixed.test/token'),
      );
      await assert.rejects(fetchBlob(client(reg.host, { resolver }), reg.host), failsWith('REGISTRY_DESTINATION_REFUSED', /10\.0\.0\.5/));
    });

    it('refuses an IPv4-mapped IPv6 realm like the IPv4 address it stands for', async () => {
      const realm = await stub('127.0.0.2', tokenService());
      const reg = await stub(
        '127.0.0.1',
        bearerRegistry(() => `http://[::ffff:127.0.0.2]:${realm.port}/token`),
      );
      await assert.rejects(fetchBlob(client(reg.host), reg.host), failsWith('REGISTRY_DESTINATION_REFUSED'));
      assert.equal(realm.requests.length, 0);
    });

    it('refuses a redirect to an internal address, checking every hop, and does not repeat its body', async () => {
      const internal = await stub('127.0.0.2', (_req, res) => {
        res.statusCode = 500;
        res.end(JSON.stringify({ errors: [{ code: 'X', message: SECRET }] }));
      });
      const reg = await stub('127.0.0.1', (_req, res) => {
        res.statusCode = 307;
        res.setHeader('location', `http://${internal.host}/admin`);
        res.end();
      });
      const c = client(reg.host, { insecureHosts: [reg.host, internal.host] });
      await assert.rejects(fetchBlob(c, reg.host), failsWith('REGISTRY_DESTINATION_REFUSED', new RegExp(SECRET)));
      assert.equal(internal.requests.length, 0, 'the redirect target was connected to');
    });

    it('refuses a registry on an internal address that is not allowlisted', async () => {
      const internal = await stub('127.0.0.2', (_req, res) => res.end('{}'));
      const c = client('127.0.0.1:1', { insecureHosts: [internal.host] });
      await assert.rejects(c.ping(internal.host), failsWith('REGISTRY_DESTINATION_REFUSED'));
      assert.equal(internal.requests.length, 0);
    });

    it('checks the address of each connection as it is made: a name rebound to an internal address is refused', async () => {
      const reg = await stub('127.0.0.1', (_req, res) => {
        res.setHeader('connection', 'close');
        res.end('{}');
      });
      // Same port on the address the name is rebound to: only the address check keeps the request from it.
      const rebound = await stub('127.0.0.2', (_req, res) => res.end('blob'), undefined, reg.port);
      const answers = ['127.0.0.1', '127.0.0.2'];
      const looked: string[] = [];
      const resolver: Resolver = async () => {
        const address = answers[Math.min(looked.length, 1)]!;
        looked.push(address);
        return [{ address, family: 4 }];
      };
      const name = `rebind.test:${reg.port}`;
      const c = client(name, { resolver, allowedInternal: [reg.host] });
      await c.ping(name);
      await assert.rejects(fetchBlob(c, name), failsWith('REGISTRY_DESTINATION_REFUSED', /127\.0\.0\.2/));
      assert.deepEqual(looked, ['127.0.0.1', '127.0.0.2'], 'one lookup per connection, the one connected with');
      assert.equal(rebound.requests.length, 0);
    });

    it('reaches an allowlisted internal host by name, at the address its lookup returned', async () => {
      const reg = await stub('127.0.0.1', (_req, res) => res.end('blob'));
      const name = `registry.test:${reg.port}`;
      const resolver: Resolver = async () => [{ address: '127.0.0.1', family: 4 }];
      const c = client(name, { resolver });
      assert.equal(await fetchBlob(c, name), 'blob');
      const other = client(name, { resolver, allowedInternal: [`registry.test:${reg.port + 1}`] });
      await assert.rejects(fetchBlob(other, name), failsWith('REGISTRY_DESTINATION_REFUSED'));
    });
  });

  describe('redirects', () => {
    it('refuses a plain-HTTP redirect to a host that is not an insecure registry, even one allowlisted', async () => {
      const target = await stub('127.0.0.1', (_req, res) => res.end('blob'));
      const reg = await stub('127.0.0.1', (_req, res) => {
        res.statusCode = 302;
        res.setHeader('location', `http://${target.host}/b`);
        res.end();
      });
      const c = client(reg.host, { allowedInternal: ['127.0.0.1'] });
      await assert.rejects(fetchBlob(c, reg.host), failsWith('REGISTRY_DESTINATION_REFUSED'));
      assert.equal(target.requests.length, 0);
    });

    it('follows at most 5 redirects', async () => {
      const reg = await stub('127.0.0.1', (req, res) => {
        res.statusCode = 302;
        res.setHeader('location', `${req.url!}x`);
        res.end();
      });
      await assert.rejects(fetchBlob(client(reg.host), reg.host), failsWith('REGISTRY_ERROR'));
      assert.equal(reg.requests.length, 6);
    });

    describe('from HTTPS', () => {
      let dir: string;
      let tls: { key: Buffer; cert: Buffer };
      let rejectUnauthorized: string | undefined;
      before(() => {
        dir = mkdtempSync(join(tmpdir(), 'berth-tls-'));
        // openssl makes the stub's self-signed certificate (tools/dev/services.sh installs it).
        execFileSync(
          'openssl',
          [
            'req',
            '-x509',
            '-newkey',
            'rsa:2048',
            '-nodes',
            '-keyout',
            join(dir, 'key.pem'),
            '-out',
            join(dir, 'cert.pem'),
            '-days',
            '1',
            '-subj',
            '/CN=127.0.0.1',
          ],
          { stdio: 'ignore' },
        );

        tls = { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };
        // The stub's certificate is self-signed: accepted for these tests only.
        rejectUnauthorized = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
        process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
      });
      after(() => {
        if (rejectUnauthorized === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
        else process.env.NODE_TLS_REJECT_UNAUTHORIZED = rejectUnauthorized;
        rmSync(dir, { recursive: true, force: true });
      });

      it('never follows a redirect from HTTPS down to plain HTTP, even to an insecure registry', async () => {
        const plain = await stub('127.0.0.1', (_req, res) => res.end('blob'));
        const reg = await stub(
          '127.0.0.1',
          (_req, res) => {
            res.statusCode = 302;
            res.setHeader('location', `http://${plain.host}/b`);
            res.end();
          },
          tls,
        );
        const c = client(reg.host, { insecureHosts: [plain.host], allowedInternal: ['127.0.0.1'] });
        await assert.rejects(fetchBlob(c, reg.host), failsWith('REGISTRY_DESTINATION_REFUSED'));
        assert.equal(reg.requests.length, 1, 'the HTTPS registry was asked');
        assert.equal(plain.requests.length, 0);
      });

      it('refuses a plain-HTTP token realm named by an HTTPS registry', async () => {
        const realm = await stub('127.0.0.1', tokenService());
        const reg = await stub(
          '127.0.0.1',
          bearerRegistry(() => `http://${realm.host}/token`),
          tls,
        );
        const c = client(reg.host, { insecureHosts: [realm.host], allowedInternal: ['127.0.0.1'], credentials: new Map([[reg.host, CREDS]]) });
        await assert.rejects(fetchBlob(c, reg.host), failsWith('REGISTRY_DESTINATION_REFUSED'));
        assert.equal(realm.requests.length, 0);
      });

      it("sends credentials to an HTTPS token realm on the registry's host", async () => {
        const realm = await stub('127.0.0.1', tokenService(), tls);
        const reg = await stub(
          '127.0.0.1',
          bearerRegistry(() => `https://${realm.host}/token`),
          tls,
        );
        const c = client(reg.host, { insecureHosts: [], allowedInternal: ['127.0.0.1'], credentials: new Map([[reg.host, CREDS]]) });
        assert.equal(await fetchBlob(c, reg.host), 'blob');
        assert.equal(realm.requests[0]?.headers.authorization, BASIC);
      });
    });

    it('does not repeat the error body of a redirect target, only its status', async () => {
      const target = await stub('127.0.0.1', (_req, res) => {
        res.statusCode = 403;
        res.end(JSON.stringify({ errors: [{ code: 'DENIED', message: SECRET }] }));
      });
      const reg = await stub('127.0.0.1', (_req, res) => {
        res.statusCode = 307;
        res.setHeader('location', `http://${target.host}/b`);
        res.end();
      });
      const c = client(reg.host, { insecureHosts: [reg.host, target.host], allowedInternal: ['127.0.0.1'] });
      await assert.rejects(fetchBlob(c, reg.host), failsWith('REGISTRY_AUTH_FAILED', new RegExp(SECRET)));
    });

    it("keeps the registry's own error code and message, bounded", async () => {
      const reg = await stub('127.0.0.1', (_req, res) => {
        res.statusCode = 404;
        res.end(JSON.stringify({ errors: [{ code: 'BLOB_UNKNOWN', message: `blob unknown ${'x'.repeat(5000)}\u001b[31m` }] }));
      });
      await assert.rejects(fetchBlob(client(reg.host), reg.host), (err: unknown) => {
        assert.ok(err instanceof BerthError);
        assert.equal(err.code, 'BLOB_NOT_FOUND');
        assert.match(err.message, /BLOB_UNKNOWN: blob unknown x/);
        assert.ok(err.message.length < 400, `${err.message.length} characters`);
        return true;
      });
    });
  });

  describe('credentials', () => {
    it("sends a registry's credentials to its token realm on the same host", async () => {
      const realm = await stub('127.0.0.1', tokenService());
      const reg = await stub(
        '127.0.0.1',
        bearerRegistry(() => `http://${realm.host}/token`),
      );
      const c = client(reg.host, { allowedInternal: ['127.0.0.1'], credentials: new Map([[reg.host, CREDS]]) });
      assert.equal(await fetchBlob(c, reg.host), 'blob');
      assert.equal(realm.requests[0]?.headers.authorization, BASIC);
    });

    it("asks a token realm on another host for an anonymous token, not with the registry's credentials", async () => {
      const realm = await stub('127.0.0.2', tokenService());
      const reg = await stub(
        '127.0.0.1',
        bearerRegistry(() => `http://${realm.host}/token`),
      );
      const c = client(reg.host, { allowedInternal: ['127.0.0.1', '127.0.0.2'], credentials: new Map([[reg.host, CREDS]]) });
      assert.equal(await fetchBlob(c, reg.host), 'blob');
      assert.equal(realm.requests.length, 1);
      assert.equal(realm.requests[0]!.headers.authorization, undefined);
    });

    it('answers a Basic challenge from a registry without credentials with REGISTRY_AUTH_FAILED, sending none', async () => {
      const other = await stub('127.0.0.1', (_req, res) => res.end('{}'));
      const reg = await stub('127.0.0.1', (_req, res) => {
        res.statusCode = 401;
        res.setHeader('www-authenticate', 'Basic realm="x"');
        res.end();
      });
      const c = client(reg.host, { credentials: new Map([[other.host, CREDS]]) });
      await assert.rejects(fetchBlob(c, reg.host), failsWith('REGISTRY_AUTH_FAILED', /alice|s3cret/));
      assert.ok(
        reg.requests.every((r) => r.headers.authorization === undefined),
        'credentials were sent',
      );
    });

    it('answers a Basic challenge of the registry the credentials belong to', async () => {
      const reg = await stub('127.0.0.1', (req, res) => {
        if (req.headers.authorization !== BASIC) {
          res.statusCode = 401;
          res.setHeader('www-authenticate', 'Basic realm="x"');
          res.end();
          return;
        }
        res.end('blob');
      });
      assert.equal(await fetchBlob(client(reg.host, { credentials: new Map([[reg.host, CREDS]]) }), reg.host), 'blob');
    });

    it('does not repeat the error body of a token realm on another host', async () => {
      const realm = await stub('127.0.0.2', (_req, res) => {
        res.statusCode = 401;
        res.end(JSON.stringify({ errors: [{ code: 'DENIED', message: SECRET }] }));
      });
      const reg = await stub(
        '127.0.0.1',
        bearerRegistry(() => `http://${realm.host}/token`),
      );
      const c = client(reg.host, { allowedInternal: ['127.0.0.1', '127.0.0.2'] });
      await assert.rejects(fetchBlob(c, reg.host), failsWith('REGISTRY_AUTH_FAILED', new RegExp(SECRET)));
    });
  });
});
