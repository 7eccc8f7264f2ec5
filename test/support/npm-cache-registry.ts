import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

/**
 * A read-only npm registry on loopback that serves, from the local npm cache, exactly the
 * packages a lock file names: a packument per package holding the locked versions, and each
 * tarball from the cache's content store by its integrity. An install pointed at it needs no
 * network beyond loopback, and can only get the versions the lock pins.
 */
export interface CacheRegistry {
  url: string;
  /** Tarballs served so far, and packages asked for that the lock does not hold. */
  served: string[];
  unknown: string[];
  close(): Promise<void>;
}

interface LockEntry {
  version?: string;
  integrity?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, unknown>;
  bin?: Record<string, string>;
  engines?: Record<string, string>;
  os?: string[];
  cpu?: string[];
  link?: boolean;
}

/** Where the npm cache keeps a tarball with this (sha512) integrity, or null. */
export function cachedTarball(cacheDir: string, integrity: string): string | null {
  const m = /^sha512-(.+)$/.exec(integrity.split(' ')[0] ?? '');
  if (!m) return null;
  const hex = Buffer.from(m[1]!, 'base64').toString('hex');
  const path = join(cacheDir, '_cacache', 'content-v2', 'sha512', hex.slice(0, 2), hex.slice(2, 4), hex.slice(4));
  return existsSync(path) ? path : null;
}

export async function startCacheRegistry(lockFile: string, cacheDir: string, port = 0): Promise<CacheRegistry> {
  const lock = JSON.parse(readFileSync(lockFile, 'utf8')) as { packages: Record<string, LockEntry> };
  const byName = new Map<string, Map<string, LockEntry>>();
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (!path || entry.link || !entry.version || !entry.integrity) continue;
    const name = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    if (!byName.has(name)) byName.set(name, new Map());
    byName.get(name)!.set(entry.version, entry);
  }
  const served: string[] = [];
  const unknown: string[] = [];
  let base = '';
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]!.slice(1));
    const tarball = /^-\/(.+)\/(\d[^/]*)\.tgz$/.exec(path);
    if (tarball) {
      const entry = byName.get(tarball[1]!)?.get(tarball[2]!);
      const file = entry?.integrity ? cachedTarball(cacheDir, entry.integrity) : null;
      if (!file) {
        unknown.push(path);
        res.writeHead(404).end();
        return;
      }
      served.push(`${tarball[1]}@${tarball[2]}`);
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      createReadStream(file).pipe(res);
      return;
    }
    const versions = byName.get(path);
    if (!versions) {
      unknown.push(path);
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found"}');
      return;
    }
    const doc = {
      name: path,
      'dist-tags': { latest: [...versions.keys()].at(-1) },
      versions: Object.fromEntries(
        [...versions].map(([version, e]) => [
          version,
          {
            name: path,
            version,
            dependencies: e.dependencies,
            optionalDependencies: e.optionalDependencies,
            peerDependencies: e.peerDependencies,
            peerDependenciesMeta: e.peerDependenciesMeta,
            bin: e.bin,
            engines: e.engines,
            os: e.os,
            cpu: e.cpu,
            dist: { tarball: `${base}/-/${path}/${version}.tgz`, integrity: e.integrity },
          },
        ]),
      ),
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `${base}/`,
    served,
    unknown,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
