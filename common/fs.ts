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
