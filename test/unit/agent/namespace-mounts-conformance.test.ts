import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { namespaceMountsConformance } from '../../conformance/namespace-mounts.js';
import { FakeNamespaceMounts } from '../../fakes/namespace-mounts.js';

namespaceMountsConformance('fake', async () => {
  const root = await mkdtemp(join(tmpdir(), 'berth-ns-fake-'));
  const ns = new FakeNamespaceMounts(root);
  const pid = 4242;
  /** A path the guest reads: under a mount point, the mounted source's file. */
  const resolve = (path: string): string | null => {
    for (const [target, source] of ns.tables.get(pid) ?? []) if (path.startsWith(`${target}/`)) return join(source, path.slice(target.length));
    return null;
  };
  return {
    ns,
    pid,
    read: async (path) => {
      const host = resolve(path);
      return host ? readFile(host, 'utf8').catch(() => null) : null;
    },
    mounted: async (target) => ns.tables.get(pid)?.has(target) ?? false,
    link: (path, to) => ns.link(pid, path, to),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
});
