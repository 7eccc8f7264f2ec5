import { chmodSync, closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';

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
