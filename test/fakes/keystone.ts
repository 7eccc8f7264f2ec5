import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { serveInProcess } from '../support/in-process.js';
import { serveOnLoopback } from '../support/loopback.js';

export interface FakeUser {
  name: string;
  password: string;
  project: string;
  roles: string[];
}

/**
 * A Keystone v3 stand-in for unit tests: password authentication with project scope, token
 * validation, and a catalog. It counts requests so tests can see caching at work.
 */
export async function fakeKeystone(opts: { users: FakeUser[]; catalog?: Record<string, string>; tokenTtlSeconds?: number; inProcess?: boolean }) {
  const tokens = new Map<string, { user: FakeUser; expires: Date }>();
  const counts = { issued: 0, validated: 0 };
  let base = '';
  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const tokenBody = (user: FakeUser, expires: Date, withCatalog: boolean) => ({
    token: {
      expires_at: expires.toISOString(),
      issued_at: new Date().toISOString(),
      methods: ['password'],
      user: { id: `u-${user.name}`, name: user.name, domain: { id: 'default', name: 'Default' } },
      project: { id: `p-${user.project}`, name: user.project, domain: { id: 'default', name: 'Default' } },
      roles: user.roles.map((r) => ({ id: `r-${r}`, name: r })),
      ...(withCatalog
        ? {
            catalog: Object.entries(opts.catalog ?? {}).map(([type, url]) => ({
              type,
              name: type,
              id: `s-${type}`,
              endpoints: ['public', 'internal', 'admin'].map((i) => ({
                id: `${type}-${i}`,
                interface: i,
                region: 'RegionOne',
                region_id: 'RegionOne',
                url: url.replace('{base}', base),
              })),
            })),
          }
        : {}),
    },
  });
  const handler = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (req.url === '/v3/auth/tokens' && req.method === 'POST') {
      const body = JSON.parse(Buffer.concat(chunks).toString() || '{}') as {
        auth?: { identity?: { password?: { user?: { name?: string; password?: string } } }; scope?: { project?: { name?: string } } };
      };
      const u = body.auth?.identity?.password?.user;
      const user = opts.users.find((x) => x.name === u?.name && x.password === u?.password && x.project === body.auth?.scope?.project?.name);
      if (!user) return json(res, 401, { error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } });
      const id = `tok-${randomUUID()}`;
      const expires = new Date(Date.now() + (opts.tokenTtlSeconds ?? 3600) * 1000);
      tokens.set(id, { user, expires });
      counts.issued++;
      return json(res, 201, tokenBody(user, expires, true), { 'x-subject-token': id });
    }
    if (req.url === '/v3/auth/tokens' && req.method === 'GET') {
      counts.validated++;
      const caller = tokens.get(String(req.headers['x-auth-token']));
      if (!caller || caller.expires < new Date()) return json(res, 401, { error: { code: 401, title: 'Unauthorized' } });
      const subject = tokens.get(String(req.headers['x-subject-token']));
      if (!subject) return json(res, 404, { error: { code: 404, title: 'Not Found', message: 'Could not find token.' } });
      return json(res, 200, tokenBody(subject.user, subject.expires, false), { 'x-subject-token': String(req.headers['x-subject-token']) });
    }
    json(res, 404, { error: { code: 404, title: 'Not Found' } });
  };
  // In-process: reached only by clients given the in-process pool (or Node's global agent routed there).
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    void handler(req, res);
  };
  const server = opts.inProcess ? serveInProcess(listener) : await serveOnLoopback(listener);
  base = server.base;
  return {
    url: `${server.base}/v3`,
    counts,
    close: server.close,
    /** Issues a token directly, as another client of the same Keystone would have. */
    issue(name: string): string {
      const user = opts.users.find((x) => x.name === name);
      if (!user) throw new Error(`no fake user ${name}`);
      const id = `tok-${randomUUID()}`;
      tokens.set(id, { user, expires: new Date(Date.now() + 3600_000) });
      return id;
    },
    revokeAll() {
      tokens.clear();
    },
  };
}
