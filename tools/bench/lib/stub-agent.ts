import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A stand-in for berth-agent that keeps instances in a map and answers at once, so that a
 * benchmark measures the driver alone. It speaks just enough of docs/agent-api.md for the
 * routes the driver uses; it runs no containers.
 */
export interface StubAgent {
  url: string;
  token: string;
  count(): number;
  close(): Promise<void>;
}

interface StubInstance {
  uuid: string;
  power_state: string;
  image_id: string | null;
  project_id: string | null;
  ip_address: null;
  created_at: string;
  started_at: string;
  exit_code: null;
}

const INSTANCE_PATH = /^\/v1\/instances\/([0-9a-fA-F-]{36})(\/action|\/console)?$/;

export async function startStubAgent(token: string): Promise<StubAgent> {
  const instances = new Map<string, StubInstance>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const send = (status: number, body?: unknown) => {
        const text = body === undefined ? '' : JSON.stringify(body);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
      };
      if (req.headers.authorization !== `Bearer ${token}`) return send(401, { error: { code: 'UNAUTHORIZED', message: 'bad token', details: {} } });
      const path = (req.url ?? '/').split('?')[0]!;
      if (path === '/healthz') return send(200, { ok: true, runtime: true });
      if (path === '/v1/instances' && req.method === 'GET') return send(200, { instances: [...instances.values()] });
      const m = INSTANCE_PATH.exec(path);
      if (!m) return send(404, { error: { code: 'NOT_FOUND', message: `no route ${req.method} ${path}`, details: {} } });
      const uuid = m[1]!;
      const found = instances.get(uuid);
      const missing = () => send(404, { error: { code: 'INSTANCE_NOT_FOUND', message: `instance ${uuid} not found`, details: { uuid } } });
      if (!m[2] && req.method === 'PUT') {
        if (found) return send(200, { instance: found });
        const spec = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { image_id?: string; project_id?: string };
        const now = new Date().toISOString();
        const inst: StubInstance = {
          uuid,
          power_state: 'running',
          image_id: spec.image_id ?? null,
          project_id: spec.project_id ?? null,
          ip_address: null,
          created_at: now,
          started_at: now,
          exit_code: null,
        };
        instances.set(uuid, inst);
        return send(201, { instance: inst });
      }
      if (!m[2] && req.method === 'GET') return found ? send(200, { instance: found }) : missing();
      if (!m[2] && req.method === 'DELETE') {
        instances.delete(uuid);
        return send(204);
      }
      if (m[2] === '/action' && req.method === 'POST') return found ? send(200, { instance: found }) : missing();
      if (m[2] === '/console' && req.method === 'GET') return found ? send(200, { output: '' }) : missing();
      return send(405, { error: { code: 'METHOD_NOT_ALLOWED', message: `${req.method} ${path}`, details: {} } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    token,
    count: () => instances.size,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
