import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BerthError } from '../../../common/errors.js';
import { silentLogger } from '../../../common/log.js';
import { loadConfig } from '../../../conf/index.js';
import { createImageClient } from '../../../glance-bridge/client/http.js';
import type { ImageService } from '../../../glance-bridge/client/types.js';
import { startImageService, type ImageServiceHandle } from '../../../glance-bridge/main.js';
import { buildImage, type BuiltImage } from '../../fakes/image-builder.js';
import { REGISTRY } from './helpers.js';

/**
 * The image service as deployed (its own registry client, configured by [registry] options), on
 * the real import path, against registries that try to use it: one whose token realm or blob
 * redirect leads to an internal service, and one that asks for credentials that belong to another
 * registry. Internal here is 127.0.0.2: [registry] allowed_internal lists 127.0.0.1 only (where
 * the stubs and the dev registry listen).
 */

const SECRET = 'INTERNAL-SECRET-41c9';
const BASIC = `Basic ${Buffer.from('deploy:pa55').toString('base64')}`;

interface Stub {
  host: string;
  requests: IncomingMessage[];
}
const servers: Array<ReturnType<typeof createServer>> = [];
async function stub(address: string, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Stub> {
  const requests: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    requests.push(req);
    handler(req, res);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  return { host: `${address}:${(server.address() as AddressInfo).port}`, requests };
}

/** Forwards a GET to the dev registry (path rewritten), as the registry the credentials belong to. */
function forward(req: IncomingMessage, res: ServerResponse, path: string): void {
  const [hostname, port] = REGISTRY.split(':');
  const { authorization: _a, host: _h, ...headers } = req.headers;
  const out = request({ hostname, port: Number(port), path, headers }, (up) => {
    res.writeHead(up.statusCode ?? 502, up.headers);
    up.pipe(res);
  });
  out.on('error', () => res.destroy());
  out.end();
}

const challenge = (res: ServerResponse, header: string) => {
  res.statusCode = 401;
  res.setHeader('www-authenticate', header);
  res.end();
};

describe('glance-bridge registry security on the real import path', () => {
  let dir: string;
  let service: ImageServiceHandle;
  let client: ImageService;
  let internal: Stub;
  let collector: Stub;
  let owned: Stub;
  let hostile: Stub;
  let image: BuiltImage;

  before(async () => {
    image = await buildImage();
    // An internal service: answers anything, with a body that must not reach the tenant.
    internal = await stub('127.0.0.2', (_req, res) => {
      res.statusCode = 401;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ token: SECRET, errors: [{ code: 'DENIED', message: SECRET }] }));
    });
    // A token service on another host than the registry that names it (reachable: allowlisted by address and port).
    collector = await stub('127.0.0.2', (_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end('{"token":"anon"}');
    });
    // The registry the credentials belong to: the dev registry behind Basic auth, and behind a Bearer realm on another host for /v2/elsewhere/.
    owned = await stub('127.0.0.1', (req, res) => {
      const url = req.url ?? '';
      if (url === '/v2/') {
        res.end('{}');
        return;
      }
      if (url.startsWith('/v2/elsewhere/')) {
        if (req.headers.authorization !== 'Bearer anon') {
          challenge(res, `Bearer realm="http://${collector.host}/token",service="owned"`);
          return;
        }
        forward(req, res, url.replace('/v2/elsewhere/', '/v2/berth/'));
        return;
      }
      if (req.headers.authorization !== BASIC) {
        challenge(res, 'Basic realm="owned"');
        return;
      }
      forward(req, res, url);
    });
    // A registry a tenant controls: its token realm, its Basic challenge or its blob redirect is the attack.
    hostile = await stub('127.0.0.1', (req, res) => {
      const url = req.url ?? '';
      if (url === '/v2/') {
        res.end('{}');
        return;
      }
      if (url.startsWith('/v2/realm/')) {
        challenge(res, `Bearer realm="http://${internal.host}/latest/meta-data",service="x"`);
        return;
      }
      if (url.startsWith('/v2/basic/')) {
        challenge(res, 'Basic realm="give me yours"');
        return;
      }
      if (url.includes('/manifests/')) {
        res.setHeader('content-type', image.mediaType);
        res.end(image.manifest);
        return;
      }
      if (url.endsWith(image.config.descriptor.digest)) {
        res.end(image.config.bytes);
        return;
      }
      res.statusCode = 307;
      res.setHeader('location', `http://${internal.host}/admin/export`);
      res.end();
    });

    dir = mkdtempSync(join(tmpdir(), 'berth-reg-sec-it-'));
    const credentials = join(dir, 'registry-auth.json');
    writeFileSync(credentials, JSON.stringify({ auths: { [owned.host]: { auth: Buffer.from('deploy:pa55').toString('base64') } } }));
    const config = loadConfig({
      env: {},
      overrides: {
        DEFAULT: { state_path: dir },
        image_store: { listen: '127.0.0.1:0', registry_listen: '' },
        registry: {
          insecure_hosts: [REGISTRY, owned.host, hostile.host, internal.host, collector.host],
          allowed_internal: ['127.0.0.1', collector.host],
          credentials_file: credentials,
          retries: 0,
        },
      },
    });
    service = await startImageService(config, { log: silentLogger() });
    client = createImageClient({ url: service.url, pollIntervalMs: 50 });
  });
  after(async () => {
    await service?.close();
    for (const s of servers) {
      s.closeAllConnections();
      s.close();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  const refused = (code: string) => (err: unknown) => {
    assert.ok(err instanceof BerthError, String(err));
    assert.match(`${err.code} ${err.message}`, new RegExp(code));
    assert.doesNotMatch(err.message, new RegExp(SECRET));
    assert.doesNotMatch(JSON.stringify(err.details ?? {}), new RegExp(SECRET));
    return true;
  };

  it('refuses a token realm on an internal address: no request reaches it, nothing of it reaches the tenant', async () => {
    await assert.rejects(client.importImage(`docker://${hostile.host}/realm/app:latest`), refused('REGISTRY_DESTINATION_REFUSED'));
    assert.equal(internal.requests.length, 0);
  });

  it('refuses a blob redirect to an internal address, killing the import without its body', async () => {
    await assert.rejects(client.importImage(`docker://${hostile.host}/team/app:latest`), refused('REGISTRY_DESTINATION_REFUSED'));
    assert.equal(internal.requests.length, 0);
  });

  it('sends credentials only to their registry: a registry without any gets REGISTRY_AUTH_FAILED and none', async () => {
    const image = await client.importImage(`docker://${owned.host}/berth/busybox:latest`);
    assert.equal(image.status, 'active');
    assert.ok(
      owned.requests.some((r) => r.headers.authorization === BASIC),
      'the owned registry got its credentials',
    );
    await assert.rejects(client.importImage(`docker://${hostile.host}/basic/app:latest`), refused('REGISTRY_AUTH_FAILED'));
    assert.ok(
      hostile.requests.every((r) => r.headers.authorization === undefined),
      'a hostile registry got an Authorization header',
    );
  });

  it('asks a token realm on another host anonymously, even for the registry that has credentials', async () => {
    const image = await client.importImage(`docker://${owned.host}/elsewhere/busybox:latest`);
    assert.equal(image.status, 'active');
    assert.ok(collector.requests.length > 0);
    assert.ok(
      collector.requests.every((r) => r.headers.authorization === undefined),
      'the other host got the credentials',
    );
  });
});
