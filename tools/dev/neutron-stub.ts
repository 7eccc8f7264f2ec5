// A stand-in for the neutron API, enough for a Zed nova-api serving `--nic none` servers
// (nova-control-plane.md §3.8). Nova has no network-less mode, so it asks neutron for
// ports on every server show/list; empty answers keep it content. Every request is logged as one
// JSON line, so a flow that starts to need more of neutron shows up at once.
//   node --import tsx tools/dev/neutron-stub.ts [port]     (or BERTH_NEUTRON_STUB_PORT; default 29696)
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

const EMPTY_LISTS: Record<string, string> = {
  '/v2.0/ports': 'ports',
  '/v2.0/networks': 'networks',
  '/v2.0/subnets': 'subnets',
  '/v2.0/security-groups': 'security_groups',
  '/v2.0/floatingips': 'floatingips',
  '/v2.0/extensions': 'extensions',
};
const QUOTA_PATH = /^\/v2\.0\/quotas\/[^/]+$/;

function answer(method: string, path: string): { status: number; body: unknown } {
  if (method !== 'GET') return { status: 404, body: notFound(method, path) };
  const key = EMPTY_LISTS[path.replace(/\.json$/, '')];
  if (key) return { status: 200, body: { [key]: [] } };
  // -1 is unlimited: the legacy 2.1 "all networks" path checks the port quota before building.
  if (QUOTA_PATH.test(path)) return { status: 200, body: { quota: { port: -1 } } };
  return { status: 404, body: notFound(method, path) };
}

function notFound(method: string, path: string) {
  return { NeutronError: { type: 'HTTPNotFound', message: `The neutron stub does not serve ${method} ${path}`, detail: '' } };
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://stub');
  const method = req.method ?? 'GET';
  const { status, body } = answer(method, url.pathname);
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
  // The body of a request is never needed for an answer, only drained.
  req.resume();
  process.stdout.write(
    `${JSON.stringify({
      time: new Date().toISOString(),
      method,
      path: url.pathname,
      query: url.search.slice(1),
      status,
      requestId: req.headers['x-openstack-request-id'] ?? null,
    })}\n`,
  );
}

function portFromArgs(): number {
  const raw = process.argv[2] ?? process.env.BERTH_NEUTRON_STUB_PORT ?? '29696';
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    process.stderr.write(`neutron-stub: invalid port ${JSON.stringify(raw)}\n`);
    process.exit(2);
  }
  return port;
}

const port = portFromArgs();
const server = createServer(handle);
server.on('error', (err) => {
  process.stderr.write(`neutron-stub: ${err.message}\n`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), listening: `127.0.0.1:${port}` })}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
