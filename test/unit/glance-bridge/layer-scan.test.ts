import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';
import { BerthError } from '../../../common/errors.js';
import { readBody } from '../../../common/http-client.js';
import { LayerScanner } from '../../../glance-bridge/import/layer-scan.js';

const LIMITS = { maxUncompressedBytes: 64 * 1024 * 1024, maxRatio: 100 };

async function tarOf(files: { name: string; body: Buffer }[]): Promise<Buffer> {
  const p = tarPack();
  for (const f of files) p.entry({ name: f.name, size: f.body.length }, f.body);
  p.finalize();
  return readBody(p as unknown as Readable);
}

/** Feeds `bytes` in chunks of `chunk` bytes, then finishes; resolves or rejects as the scanner does. */
async function scan(bytes: Buffer, chunk: number, compression: 'gzip' | 'none' = 'gzip'): Promise<void> {
  const scanner = new LayerScanner('sha256:test', compression, LIMITS);
  try {
    for (let off = 0; off < bytes.length; off += chunk) await scanner.write(bytes.subarray(off, off + chunk));
    await scanner.finish();
  } finally {
    scanner.destroy();
  }
}

describe('glance-bridge LayerScanner', () => {
  it('accepts a gzip layer of several large files, fed in small or in large chunks', async () => {
    const layer = gzipSync(
      await tarOf([
        { name: 'usr/bin/a', body: randomBytes(3 * 1024 * 1024) },
        { name: 'usr/bin/b', body: Buffer.alloc(700 * 1024, 7) },
        { name: 'etc/empty', body: Buffer.alloc(0) },
      ]),
    );
    await scan(layer, 16 * 1024);
    await scan(layer, 4 * 1024 * 1024);
  });

  it('refuses, without hanging, a layer whose last entry is cut short', async () => {
    const whole = await tarOf([{ name: 'big', body: randomBytes(256 * 1024) }]);
    const cut = whole.subarray(0, 512 + 100 * 1024);
    for (const [bytes, compression] of [
      [gzipSync(cut), 'gzip'],
      [cut, 'none'],
    ] as const) {
      await assert.rejects(
        scan(bytes, 64 * 1024, compression),
        (err: unknown) => err instanceof BerthError && err.code === 'LAYER_INVALID' && /sha256:test/.test(err.message),
      );
    }
  });

  it('still refuses an unsafe entry that follows a large one', async () => {
    const layer = gzipSync(
      await tarOf([
        { name: 'big', body: randomBytes(2 * 1024 * 1024) },
        { name: '../escape', body: Buffer.from('x') },
      ]),
    );
    await assert.rejects(scan(layer, 1024 * 1024), (err: unknown) => err instanceof BerthError && err.code === 'LAYER_UNSAFE');
  });
});
