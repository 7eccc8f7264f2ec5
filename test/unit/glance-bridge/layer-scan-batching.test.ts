import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { gzipSync, type Gunzip } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';
import { BerthError } from '../../../common/errors.js';
import { readBody } from '../../../common/http-client.js';
import { ustarHeader } from '../../../glance-bridge/archive/build.js';
import { GUNZIP_INPUT, LayerScanner } from '../../../glance-bridge/import/layer-scan.js';

const LIMITS = { maxUncompressedBytes: 512 * 1024 * 1024, maxRatio: 100 };

async function tarOf(files: { name: string; body: Buffer }[]): Promise<Buffer> {
  const p = tarPack();
  for (const f of files) p.entry({ name: f.name, size: f.body.length }, f.body);
  p.finalize();
  return readBody(p as unknown as Readable);
}

/** The scanner's gunzip stream and counters, which these tests watch from outside. */
interface Inside {
  gunzip: Gunzip;
  compressed: number;
}
const inside = (s: LayerScanner) => s as unknown as Inside;

/**
 * Feeds `bytes` in `chunk`-byte pieces and watches gunzip's input: the sizes of its writes, and
 * after each of the scanner's writes, how far the bytes counted as compressed are ahead of what
 * gunzip has read, and how much gunzip holds unread.
 */
async function watchedScan(bytes: Buffer, chunk: number): Promise<{ writes: number[]; maxAhead: number; maxHeld: number }> {
  const scanner = new LayerScanner('sha256:test', 'gzip', LIMITS);
  const { gunzip } = inside(scanner);
  const writes: number[] = [];
  const write = gunzip.write.bind(gunzip) as (b: Buffer) => boolean;
  gunzip.write = ((b: Buffer) => {
    writes.push(b.length);
    return write(b);
  }) as typeof gunzip.write;
  let maxAhead = 0;
  let maxHeld = 0;
  const watch = () => {
    maxAhead = Math.max(maxAhead, inside(scanner).compressed - gunzip.bytesWritten);
    maxHeld = Math.max(maxHeld, gunzip.writableLength);
  };
  gunzip.on('data', watch);
  try {
    for (let off = 0; off < bytes.length; off += chunk) {
      await scanner.write(bytes.subarray(off, off + chunk));
      watch();
    }
    await scanner.finish();
  } finally {
    scanner.destroy();
  }
  return { writes, maxAhead, maxHeld };
}

describe('glance-bridge LayerScanner: batched input to gunzip', () => {
  it('gives gunzip whole batches, whatever the size of the chunks it is fed, and never more than one batch unread', async () => {
    const layer = gzipSync(await tarOf([{ name: 'blob', body: randomBytes(5 * 1024 * 1024 + 123) }]), { level: 1 });
    for (const chunk of [64 * 1024, 7777, 3 * 1024 * 1024]) {
      const { writes, maxAhead, maxHeld } = await watchedScan(layer, chunk);
      // Every write but the last (the rest, given at the end) is one whole batch.
      assert.deepEqual(writes.slice(0, -1), Array<number>(writes.length - 1).fill(GUNZIP_INPUT), `chunks of ${chunk}`);
      assert.equal(
        writes.reduce((a, b) => a + b, 0),
        layer.length,
      );
      // Back-pressure: a batch is handed over only once gunzip has read the one before.
      assert.ok(maxHeld <= GUNZIP_INPUT, `gunzip held ${maxHeld} bytes unread`);
      // The ratio check counts no more than one batch beyond what gunzip has read.
      assert.ok(maxAhead <= GUNZIP_INPUT, `compressed count ${maxAhead} bytes ahead of gunzip`);
    }
  });

  it('still refuses a decompression bomb by its ratio, fed in download-sized chunks', async () => {
    // 80 MiB of zeros: a few dozen KiB compressed, far past 100× once beyond the 64 MiB floor.
    const size = 80 * 1024 * 1024;
    const bomb = gzipSync(Buffer.concat([ustarHeader('zeros', size), Buffer.alloc(size + 1024)]));
    await assert.rejects(
      watchedScan(bomb, 64 * 1024),
      (err: unknown) => err instanceof BerthError && err.code === 'BLOB_TOO_LARGE' && /times its compressed size/.test(err.message),
    );
  });

  it('refuses an unsafe entry that only the last, partial batch holds', async () => {
    const layer = gzipSync(
      await tarOf([
        { name: 'big', body: randomBytes(2 * 1024 * 1024 + 4096) },
        { name: '../escape', body: Buffer.from('x') },
      ]),
      { level: 1 },
    );
    assert.ok(layer.length % GUNZIP_INPUT !== 0);
    await assert.rejects(watchedScan(layer, 64 * 1024), (err: unknown) => err instanceof BerthError && err.code === 'LAYER_UNSAFE');
  });

  it('fails the writes after gunzip fails on corrupt input, without hanging', async () => {
    const good = gzipSync(await tarOf([{ name: 'blob', body: randomBytes(3 * 1024 * 1024) }]), { level: 1 });
    const corrupt = Buffer.from(good);
    corrupt.fill(0xff, 1024 * 1024 + 100, 1024 * 1024 + 4096);
    const scanner = new LayerScanner('sha256:test', 'gzip', LIMITS);
    let failedAt = -1;
    try {
      for (let off = 0; off < corrupt.length; off += 64 * 1024) {
        try {
          await scanner.write(corrupt.subarray(off, off + 64 * 1024));
        } catch (err) {
          assert.ok(err instanceof BerthError && err.code === 'LAYER_INVALID', String(err));
          failedAt = off;
          break;
        }
      }
      if (failedAt < 0) await assert.rejects(scanner.finish(), (err: unknown) => err instanceof BerthError && err.code === 'LAYER_INVALID');
      else await assert.rejects(scanner.write(Buffer.alloc(10)), (err: unknown) => err instanceof BerthError && err.code === 'LAYER_INVALID');
    } finally {
      scanner.destroy();
    }
  });
});
