import { chmodSync, closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { open, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** fsync of a file or directory by path (a directory: so that an entry created or renamed in it lasts). */
export async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Creates a directory only its owner may enter (0700), parents made along the way likewise. With
 * `tighten`, a directory that is Berth's own (the state path, the blob store) and already exists
 * with group or other access is made private too: it holds user data, key data and private image
 * content. Without it an existing directory is left as the operator made it (it may be shared).
 */
export function makePrivateDirSync(path: string, opts: { tighten?: boolean } = {}): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  if (opts.tighten && (statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o700);
}

/**
 * Makes sure a file Berth owns exists and only its owner may read or write it (0600): created so
 * when missing, its access narrowed when it has more. SQLite gives the -wal and -shm files it makes
 * the mode of the database file, so creating the database this way covers them.
 */
export function makePrivateFileSync(path: string): void {
  closeSync(openSync(path, 'a', 0o600));
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
}

/** The file operations a durable replace makes, injectable so that tests can see their order. */
export interface DurableFileOps {
  writeFile(path: string, data: string | Buffer, opts: { mode: number }): Promise<void>;
  fsync(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
}

export const nodeFileOps: DurableFileOps = {
  writeFile: (path, data, opts) => writeFile(path, data, opts),
  fsync: fsyncPath,
  rename: (from, to) => rename(from, to),
};

/**
 * Replaces `path` with `data` so that a crash (of the process or of the host) leaves the old
 * content or the new one, never a torn or empty file: written to `<path>.tmp`, that file fsynced,
 * renamed into place, then the directory fsynced so that the rename itself lasts.
 */
export async function replaceFileDurably(path: string, data: string | Buffer, mode = 0o600, ops: DurableFileOps = nodeFileOps): Promise<void> {
  const tmp = `${path}.tmp`;
  await ops.writeFile(tmp, data, { mode });
  await ops.fsync(tmp);
  await ops.rename(tmp, path);
  await ops.fsync(dirname(path));
}
