/**
 * Worker thread of WorkerFileHasher (file-digest.ts): answers each { id, path } with the file's
 * sha256, one file at a time. Plain blocking reads: this thread has nothing else to do, and the
 * thread pool stays free for the importer's downloads, decompression and writes.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import type { DigestReply, DigestRequest } from './file-digest.js';

const port = parentPort!;
const buf = Buffer.allocUnsafe(1024 * 1024);

function sha256(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const hash = createHash('sha256');
    for (let n = readSync(fd, buf, 0, buf.length, null); n > 0; n = readSync(fd, buf, 0, buf.length, null)) hash.update(buf.subarray(0, n));
    return hash.digest('hex');
  } finally {
    closeSync(fd);
  }
}

port.on('message', (m: DigestRequest) => {
  let reply: DigestReply;
  try {
    reply = { id: m.id, hex: sha256(m.path) };
  } catch (err) {
    reply = { id: m.id, error: err instanceof Error ? err.message : String(err) };
  }
  port.postMessage(reply);
});
