import { lstat, mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { NamespaceMounts } from '../../agent/volumes/ns-mounts.js';

/**
 * NamespaceMounts over folders standing for containers' roots: `<root>/<pid>/` is process pid's
 * root, and its mount table is kept here. A mount point that is a symbolic link there is refused,
 * as the real one refuses a guest's link. It passes test/conformance/namespace-mounts.ts with
 * PythonNamespaceMounts.
 */
export class FakeNamespaceMounts implements NamespaceMounts {
  /** Mount points by pid, and the source each shows. */
  readonly tables = new Map<number, Map<string, string>>();

  constructor(private readonly root: string) {}

  async mount(pid: number, source: string, target: string): Promise<void> {
    const table = this.tables.get(pid) ?? new Map<string, string>();
    if (table.has(target)) return;
    const inRoot = join(this.root, String(pid), target);
    const st = await lstat(inRoot).catch(() => null);
    if (st?.isSymbolicLink()) throw new Error('the mount point goes through a symbolic link of the guest');
    await mkdir(inRoot, { recursive: true });
    table.set(target, source);
    this.tables.set(pid, table);
  }

  async unmount(pid: number, target: string): Promise<void> {
    this.tables.get(pid)?.delete(target);
  }

  /** A guest's symbolic link at `path`, for the suite. */
  async link(pid: number, path: string, to: string): Promise<void> {
    await mkdir(join(this.root, String(pid)), { recursive: true });
    await symlink(to, join(this.root, String(pid), path));
  }
}
