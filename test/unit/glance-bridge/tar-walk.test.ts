import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';
import { BerthError } from '../../../common/errors.js';
import { readBody } from '../../../common/http-client.js';
import { LayerScanner } from '../../../glance-bridge/import/layer-scan.js';
import { TarFormatError, TarWalker, type TarEntry } from '../../../glance-bridge/import/tar-walk.js';
import { base256, END, file, header, pax } from '../../support/tar-craft.js';

/** The entries the walker reports for `bytes`, fed in chunks of `chunk` bytes. */
function walk(bytes: Buffer, chunk = bytes.length): TarEntry[] {
  const entries: TarEntry[] = [];
  const walker = new TarWalker((e) => entries.push(e));
  for (let at = 0; at < bytes.length; at += chunk) walker.write(bytes.subarray(at, at + chunk));
  walker.end();
  return entries;
}

const names = (entries: TarEntry[]): string[] => entries.map((e) => e.name);

async function scanLayer(bytes: Buffer): Promise<void> {
  const scanner = new LayerScanner('sha256:test', 'gzip', { maxUncompressedBytes: 64 * 1024 * 1024, maxRatio: 100 });
  try {
    await scanner.write(gzipSync(bytes));
    await scanner.finish();
  } finally {
    scanner.destroy();
  }
}

describe('glance-bridge TarWalker (tar headers as Go reads them)', () => {
  it('reports the entries tar-stream writes, fed whole or byte by byte', async () => {
    const p = tarPack();
    p.entry({ name: 'etc/', type: 'directory' });
    p.entry({ name: 'etc/passwd', size: 5 }, Buffer.from('root\n'));
    p.entry({ name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox' });
    p.entry({ name: `deep/${'d'.repeat(120)}/${'f'.repeat(120)}`, size: 3 }, Buffer.from('abc'));
    p.entry({ name: 'hard', type: 'link', linkname: 'etc/passwd' });
    p.finalize();
    const bytes = await readBody(p as unknown as Readable);
    const expected = [
      { name: 'etc/', linkname: '', type: 'directory', size: 0 },
      { name: 'etc/passwd', linkname: '', type: 'file', size: 5 },
      { name: 'bin/sh', linkname: '/bin/busybox', type: 'symlink', size: 0 },
      { name: `deep/${'d'.repeat(120)}/${'f'.repeat(120)}`, linkname: '', type: 'file', size: 3 },
      { name: 'hard', linkname: 'etc/passwd', type: 'link', size: 0 },
    ];
    assert.deepEqual(walk(bytes), expected);
    assert.deepEqual(walk(bytes, 1), expected);
    assert.deepEqual(walk(bytes, 700), expected);
  });

  it('joins the USTAR prefix; in GNU headers only when their time fields do not parse, as Go does', () => {
    assert.deepEqual(names(walk(Buffer.concat([file({ name: 'name', prefix: 'some/prefix' }), END]))), ['some/prefix/name']);
    // GNU: atime and ctime live there; octal times are times, not a prefix.
    assert.deepEqual(names(walk(Buffer.concat([file({ name: 'name', prefix: `${'0'.repeat(11)}\0${'0'.repeat(11)}\0`, magic: 'gnu' }), END]))), ['name']);
    // An atime that does not parse: Go reads the area as a prefix (its pre-1.8 writer's files).
    assert.deepEqual(names(walk(Buffer.concat([file({ name: 'passwd', prefix: 'lnk', magic: 'gnu' }), END]))), ['lnk/passwd']);
    assert.deepEqual(names(walk(Buffer.concat([file({ name: 'name', prefix: 'ignored', magic: 'v7' }), END]))), ['name']);
  });

  it('lets empty long names and empty PAX values count for nothing, and keeps names byte for byte', () => {
    const bytes = Buffer.concat([
      file({ name: '././@LongLink', type: 'L' }, Buffer.from('\0')),
      file({ name: 'own-name' }),
      pax({ path: '', size: '' }),
      file({ name: 'own-too' }, Buffer.from('abc')),
      file({ name: 'd\xff' }),
      file({ name: 'd\xfe' }),
      END,
    ]);
    assert.deepEqual(
      walk(bytes).map((e) => [e.name, e.size]),
      [
        ['own-name', 0],
        ['own-too', 3],
        ['d\xff', 0],
        ['d\xfe', 0],
      ],
    );
  });

  it('accepts negative base-256 times, as Go does', () => {
    const minusOne = Buffer.alloc(12, 0xff);
    assert.deepEqual(names(walk(Buffer.concat([header({ name: 'old', mtimeField: minusOne }), END]))), ['old']);
  });

  it('takes GNU long names over PAX paths, and PAX paths, link paths and sizes over the header', () => {
    const longName = file({ name: '././@LongLink', type: 'L' }, Buffer.from('gnu/long/name\0'));
    const longLink = file({ name: '././@LongLink', type: 'K' }, Buffer.from('gnu/target\0'));
    const bytes = Buffer.concat([
      pax({ path: 'pax/path', linkpath: 'pax/target' }),
      longName,
      longLink,
      file({ name: 'short', type: '2' }),
      pax({ path: 'pax/only', size: '1024' }),
      header({ name: 'short2', size: 1 }),
      Buffer.alloc(1024),
      file({ name: 'after' }),
      END,
    ]);
    assert.deepEqual(walk(bytes), [
      { name: 'gnu/long/name', linkname: 'gnu/target', type: 'symlink', size: 0 },
      { name: 'pax/only', linkname: '', type: 'file', size: 1024 },
      { name: 'after', linkname: '', type: 'file', size: 0 },
    ]);
  });

  it('applies only the last PAX header before an entry, and no global one, which is an entry of its own', () => {
    const bytes = Buffer.concat([
      pax({ path: 'first' }),
      pax({ linkpath: 'second-link' }),
      file({ name: 'plain', type: '2', linkname: 'x' }),
      pax({ path: 'global/name' }, 'g'),
      file({ name: 'not-renamed' }),
      END,
    ]);
    assert.deepEqual(
      walk(bytes).map((e) => [e.name, e.linkname, e.type]),
      [
        ['plain', 'second-link', 'symlink'],
        ['global/name', '', 'pax-global'],
        ['not-renamed', '', 'file'],
      ],
    );
  });

  it('gives header-only types no body whatever their size says, as Go does', () => {
    // A symlink claiming 512 bytes: Go reads the next block as a header, and so must the scanner.
    const bytes = Buffer.concat([header({ name: 'link', type: '2', linkname: 'x', size: 512 }), file({ name: 'hidden' }), END]);
    assert.deepEqual(names(walk(bytes)), ['link', 'hidden']);
    // A '\0' entry named with a trailing slash is a directory, body-less too.
    const dir = Buffer.concat([header({ name: 'dir/', type: '\0', size: 512 }), file({ name: 'next' }), END]);
    assert.deepEqual(
      walk(dir).map((e) => [e.name, e.type]),
      [
        ['dir/', 'directory'],
        ['next', 'file'],
      ],
    );
  });

  it('reads base-256 sizes', () => {
    const bytes = Buffer.concat([header({ name: 'big', sizeField: base256(1024) }), Buffer.alloc(1024), file({ name: 'after' }), END]);
    assert.deepEqual(
      walk(bytes).map((e) => [e.name, e.size]),
      [
        ['big', 1024],
        ['after', 0],
      ],
    );
  });

  it('stops at two zero blocks, and refuses a zero block followed by a header', () => {
    assert.deepEqual(names(walk(Buffer.concat([file({ name: 'a' }), END, Buffer.from('trailing garbage')]))), ['a']);
    assert.deepEqual(names(walk(Buffer.concat([file({ name: 'a' }), Buffer.alloc(512)]))), ['a'], 'one zero block then the end is fine');
    assert.throws(() => walk(Buffer.concat([file({ name: 'a' }), Buffer.alloc(512), file({ name: 'b' })])), TarFormatError);
  });

  it('refuses bad checksums, bad numbers, sparse files, unknown types, oversized or malformed extended headers', () => {
    const cases: Array<[string, Buffer]> = [
      ['checksum', file({ name: 'a', badChecksum: true })],
      ['size', header({ name: 'a', sizeField: Buffer.from('12x\0') })],
      ['negative', header({ name: 'a', sizeField: Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) })],
      ['sparse', file({ name: 'a', type: 'S' })],
      ['sparse pax', Buffer.concat([pax({ 'GNU.sparse.major': '1' }), file({ name: 'a' })])],
      ['unknown type', file({ name: 'a', type: 'V' })],
      ['huge extended header', header({ name: 'x', type: 'x', size: 2 * 1024 * 1024 })],
      ['malformed pax', file({ name: 'x', type: 'x' }, Buffer.from('99 path=a\n'))],
      ['pax size', Buffer.concat([pax({ size: '-1' }), file({ name: 'a' })])],
      ['NUL in pax path', Buffer.concat([pax({ path: 'a\0b' }), file({ name: 'a' })])],
    ];
    for (const [what, bytes] of cases) assert.throws(() => walk(Buffer.concat([bytes, END])), TarFormatError, what);
  });

  it('refuses an archive that ends inside a header, a body or an extended header, or after an extended header', () => {
    const whole = file({ name: 'a' }, randomBytes(1000));
    for (const cut of [100, 600, 1200]) assert.throws(() => walk(whole.subarray(0, cut)), TarFormatError, `cut at ${cut}`);
    assert.throws(() => walk(pax({ path: 'x' }).subarray(0, 600)), TarFormatError);
    assert.throws(() => walk(pax({ path: 'x' })), /without its entry/);
  });

  it('makes the scanner refuse an entry hidden from a reader that trusts header-only sizes', async () => {
    const bytes = Buffer.concat([header({ name: 'innocent', type: '5', size: 512 }), file({ name: '../../etc/cron.d/x' }), END]);
    await assert.rejects(scanLayer(bytes), (err: unknown) => err instanceof BerthError && err.code === 'LAYER_UNSAFE' && /cron/.test(err.message));
  });

  it('makes the scanner refuse what Go would hand dockerd: a global header naming a whiteout of nothing, a write through a symlink named in non-UTF-8 bytes', async () => {
    const refused = (bytes: Buffer) => assert.rejects(scanLayer(bytes), (err: unknown) => err instanceof BerthError && err.code === 'LAYER_UNSAFE');
    await refused(Buffer.concat([pax({ path: 'etc/.wh.' }, 'g'), END]));
    await refused(Buffer.concat([file({ name: 'etc/.wh.', type: 'g' }, Buffer.alloc(0)), END]));
    await refused(Buffer.concat([file({ name: 'd\xff', type: '2', linkname: '/etc' }), file({ name: 'd\xfe' }), file({ name: 'd\xff/passwd' }), END]));
    await refused(Buffer.concat([file({ name: 'lnk', type: '2', linkname: '/etc' }), file({ name: 'passwd', prefix: 'lnk', magic: 'gnu' }), END]));
  });

  it('makes the scanner refuse an unsafe name given by a PAX header or a GNU long name', async () => {
    for (const meta of [pax({ path: '../escape' }), file({ name: '././@LongLink', type: 'L' }, Buffer.from('/abs/path\0'))]) {
      await assert.rejects(
        scanLayer(Buffer.concat([meta, file({ name: 'harmless' }), END])),
        (err: unknown) => err instanceof BerthError && err.code === 'LAYER_UNSAFE',
      );
    }
    await assert.rejects(
      scanLayer(Buffer.concat([file({ name: 'a', badChecksum: true }), END])),
      (err: unknown) => err instanceof BerthError && err.code === 'LAYER_INVALID' && /checksum/.test(err.message),
    );
  });
});
