import type { Server } from 'node:http';
import { rmSync } from 'node:fs';

/** `HOST:PORT`, `[::1]:PORT` or an absolute unix socket path, as the `listen` options take them. */
export type ListenAddress = { host: string; port: number } | { path: string };

export function parseListen(value: string): ListenAddress {
  if (value.startsWith('/')) return { path: value };
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(value);
  if (!m || Number(m[2]) > 65535) throw new Error(`listen address must be HOST:PORT or /path.sock, got ${JSON.stringify(value)}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

export function listen(server: Server, addr: ListenAddress): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      const a = server.address();
      resolve(typeof a === 'string' ? `unix://${a}` : `http://${a!.family === 'IPv6' ? `[${a!.address}]` : a!.address}:${a!.port}`);
    };
    if ('path' in addr) {
      rmSync(addr.path, { force: true });
      server.listen(addr.path, done);
    } else server.listen(addr.port, addr.host, done);
  });
}
