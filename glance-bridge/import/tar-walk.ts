/**
 * Walks the headers of a tar stream the way Go's archive/tar reads them (the reader dockerd
 * unpacks layers with), without copying or even looking at file bodies: the scanner must see the
 * entries dockerd will see, names and sizes decoded by the same rules, or a layer could hide an
 * entry from it. Fed chunk by chunk, synchronously; each entry is handed to `onEntry`.
 *
 * What it follows from Go's reader (archive/tar reader.go, format.go, strconv.go):
 * - a header is valid only if its checksum matches, as an unsigned or a signed byte sum;
 * - numbers are octal, or base-256 when the first byte has its high bit set;
 * - the name is prefix + "/" + name in USTAR and PAX headers (a 131-byte prefix in STAR ones),
 *   and GNU headers have no prefix;
 * - PAX extended headers ('x') set the next entry's path, linkpath and size; GNU long names
 *   ('L', 'K') set its name and link name and win over PAX; empty values count for nothing;
 *   each of these bodies is at most 1 MiB;
 * - a PAX global header ('g') applies to no other entry, but Go hands it back as an entry of its
 *   own, named by its `path` record or else its header, and dockerd's layer unpacking
 *   (UnpackLayer, with the naive-diff storage drivers) treats that name like any other: it is
 *   reported, as type 'pax-global';
 * - in GNU headers whose atime or ctime field does not parse, the prefix field is taken as a
 *   name prefix after all, if it is ASCII (Go's reading of files from its own pre-1.8 writer);
 * - names are kept byte for byte (latin1): two names differing in bytes that are not UTF-8 stay
 *   two names, as they are on disk;
 * - a '\0' entry whose name ends in "/" is a directory, and links, symlinks, devices, directories
 *   and fifos have no body, whatever their size field says;
 * - two zero blocks end the archive (what follows is never read); a zero block followed by
 *   anything else is an error; the stream may also end cleanly at a header boundary.
 * GNU sparse entries ('S', or PAX GNU.sparse.* records) are refused: dockerd would write the
 * expanded file under a name given inside the sparse map's records.
 */

export type TarEntryType = 'file' | 'contiguous-file' | 'link' | 'symlink' | 'character-device' | 'block-device' | 'directory' | 'fifo' | 'pax-global';

export interface TarEntry {
  name: string;
  linkname: string;
  type: TarEntryType;
  size: number;
}

/** A tar stream that is not one, or that ended early. */
export class TarFormatError extends Error {}

const BLOCK = 512;
const MAX_SPECIAL = 1024 * 1024;
const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'contiguous-file',
  '1': 'link',
  '2': 'symlink',
  '3': 'character-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
};
const HEADER_ONLY = new Set<TarEntryType>(['link', 'symlink', 'character-device', 'block-device', 'directory', 'fifo']);
const META = new Set(['x', 'g', 'L', 'K']);

/** What the extended headers before an entry say of it: the last PAX header's records, GNU long names. */
interface Pending {
  pax: Map<string, string> | null;
  longName?: string;
  longLink?: string;
}

type State =
  | { kind: 'header' }
  | { kind: 'skip'; left: number }
  | { kind: 'meta'; type: string; ownName: string; body: Buffer; filled: number; padding: number }
  | { kind: 'end' };

export class TarWalker {
  private state: State = { kind: 'header' };
  private readonly block = Buffer.alloc(BLOCK);
  private blockFill = 0;
  private zeroBlock = false;
  private pending: Pending = { pax: null };

  constructor(private readonly onEntry: (entry: TarEntry) => void) {}

  /** Feeds the next bytes of the stream; throws TarFormatError, or whatever onEntry throws. */
  write(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      const state = this.state;
      switch (state.kind) {
        case 'end':
          return;
        case 'skip': {
          const n = Math.min(state.left, chunk.length - at);
          at += n;
          state.left -= n;
          if (state.left === 0) this.state = { kind: 'header' };
          break;
        }
        case 'meta': {
          if (state.filled < state.body.length) {
            const n = Math.min(state.body.length - state.filled, chunk.length - at);
            chunk.copy(state.body, state.filled, at, at + n);
            state.filled += n;
            at += n;
          }
          if (state.filled === state.body.length) {
            const n = Math.min(state.padding, chunk.length - at);
            at += n;
            state.padding -= n;
            if (state.padding === 0) {
              this.state = { kind: 'header' };
              this.applyMeta(state.type, state.ownName, state.body);
            }
          }
          break;
        }
        case 'header': {
          if (this.blockFill === 0 && chunk.length - at >= BLOCK) {
            this.header(chunk.subarray(at, at + BLOCK));
            at += BLOCK;
            break;
          }
          const n = Math.min(BLOCK - this.blockFill, chunk.length - at);
          chunk.copy(this.block, this.blockFill, at, at + n);
          this.blockFill += n;
          at += n;
          if (this.blockFill === BLOCK) {
            this.blockFill = 0;
            this.header(this.block);
          }
          break;
        }
      }
    }
  }

  /** The stream ended: fine at a header boundary or after the end marker, an error anywhere else. */
  end(): void {
    const s = this.state;
    if (s.kind === 'end') return;
    if (s.kind === 'header' && this.blockFill === 0) {
      if (this.pending.pax || this.pending.longName !== undefined || this.pending.longLink !== undefined) {
        throw new TarFormatError('the archive ends after an extended header, without its entry');
      }
      return;
    }
    throw new TarFormatError(s.kind === 'header' ? 'the archive ends inside a header' : 'the archive ended inside an entry');
  }

  private header(b: Buffer): void {
    if (isZero(b)) {
      if (this.zeroBlock) this.state = { kind: 'end' };
      this.zeroBlock = true;
      return;
    }
    if (this.zeroBlock) throw new TarFormatError('a zero block is followed by a header');
    checkChecksum(b);
    const typeflag = String.fromCharCode(b[156]!);
    // Go refuses a header whose numeric fields do not parse, even those nobody here needs.
    for (const [from, to, what] of [
      [100, 108, 'mode'],
      [108, 116, 'uid'],
      [116, 124, 'gid'],
      [136, 148, 'mtime'],
    ] as const)
      parseNumber(b.subarray(from, to), what);
    let size = parseNumber(b.subarray(124, 136), 'size');
    if (size < 0) throw new TarFormatError('a negative size');
    if (META.has(typeflag)) {
      if (size > MAX_SPECIAL) throw new TarFormatError(`an extended header of ${size} bytes (at most ${MAX_SPECIAL})`);
      // A global header is named by its own header when its records do not name it.
      const ownName = typeflag === 'g' ? joinPrefix(b) : '';
      if (size === 0) this.applyMeta(typeflag, ownName, Buffer.alloc(0));
      else this.state = { kind: 'meta', type: typeflag, ownName, body: Buffer.alloc(size), filled: 0, padding: padding(size) };
      return;
    }
    if (typeflag === 'S') throw new TarFormatError('GNU sparse entries are not supported');
    let type = TYPES[typeflag];
    if (!type) throw new TarFormatError(`entry type ${JSON.stringify(typeflag)} is not supported`);
    const { pax, longName, longLink } = this.pending;
    this.pending = { pax: null };
    const name = longName || pax?.get('path') || joinPrefix(b);
    const linkname = longLink || pax?.get('linkpath') || cString(b.subarray(157, 257));
    const paxSize = pax?.get('size') || undefined;
    if (paxSize !== undefined) {
      if (!/^[0-9]+$/.test(paxSize) || !Number.isSafeInteger(Number(paxSize))) throw new TarFormatError(`a PAX size of ${JSON.stringify(paxSize)}`);
      size = Number(paxSize);
    }
    if (typeflag === '\0' && name.endsWith('/')) type = 'directory';
    const body = HEADER_ONLY.has(type) ? 0 : size;
    this.onEntry({ name, linkname, type, size: body });
    if (body > 0) this.state = { kind: 'skip', left: body + padding(body) };
  }

  private applyMeta(type: string, ownName: string, body: Buffer): void {
    // Go takes a long name or link only when it is not empty.
    if (type === 'L') this.pending.longName = cString(body) || undefined;
    else if (type === 'K') this.pending.longLink = cString(body) || undefined;
    else {
      const records = parsePax(body);
      for (const [key, value] of records) {
        if (key.startsWith('GNU.sparse.')) throw new TarFormatError('GNU sparse entries are not supported');
        if ((key === 'path' || key === 'linkpath') && value.includes('\0')) throw new TarFormatError(`a PAX ${key} with a NUL byte`);
      }
      const pax = new Map(records);
      if (type === 'g') {
        // An entry of its own (see above), which also ends whatever was pending.
        this.pending = { pax: null };
        this.onEntry({ name: pax.get('path') || ownName, linkname: '', type: 'pax-global', size: 0 });
        return;
      }
      // A local header replaces the records of any local one before it.
      this.pending.pax = pax;
    }
  }
}

const padding = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK;

function isZero(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

/** The NUL-terminated string at the start of `b`, byte for byte. */
function cString(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.toString('latin1', 0, nul === -1 ? b.length : nul);
}

/** name, or prefix/name, as Go reads them for the header's format. */
function joinPrefix(b: Buffer): string {
  const name = cString(b.subarray(0, 100));
  const magic = b.toString('latin1', 257, 263);
  const version = b.toString('latin1', 263, 265);
  let prefix = '';
  if (magic === 'ustar\0') {
    const star = b.toString('latin1', 508, 512) === 'tar\0';
    prefix = cString(b.subarray(345, star ? 476 : 500));
  } else if (magic === 'ustar ' && version === ' \0' && !(parses(b, 345, 357) && parses(b, 357, 369))) {
    // GNU: that area holds atime and ctime, unless they do not parse (see the top of this file).
    const text = cString(b.subarray(345, 500));
    if (/^[\x00-\x7f]*$/.test(text)) prefix = text;
  }
  return prefix ? `${prefix}/${name}` : name;
}

/** Whether the GNU time field at from..to is empty (first byte NUL) or parses as a number. */
function parses(b: Buffer, from: number, to: number): boolean {
  if (b[from] === 0) return true;
  try {
    parseNumber(b.subarray(from, to), 'time');
    return true;
  } catch {
    return false;
  }
}

function checkChecksum(b: Buffer): void {
  const recorded = parseOctal(b.subarray(148, 156), 'checksum');
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : b[i]!;
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  if (recorded !== unsigned && recorded !== signed) throw new TarFormatError('a header checksum does not match');
}

/** A numeric field: base-256 when the high bit of its first byte is set, else octal. */
function parseNumber(field: Buffer, what: string): number {
  if (field[0]! & 0x80) {
    // Two's complement when the second bit is set too (a negative time, say).
    const inv = field[0]! & 0x40 ? 0xff : 0;
    let n = (field[0]! ^ inv) & 0x7f;
    for (let i = 1; i < field.length; i++) {
      n = n * 256 + (field[i]! ^ inv);
      if (!Number.isSafeInteger(n)) throw new TarFormatError(`a ${what} too large`);
    }
    return inv ? -n - 1 : n;
  }
  return parseOctal(field, what);
}

/** Octal, padded with spaces or NULs on either side; a NUL inside ends it. */
function parseOctal(field: Buffer, what: string): number {
  const trimmed = field.toString('latin1').replace(/^[ \0]+|[ \0]+$/g, '');
  const text = trimmed.split('\0')[0]!;
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`a ${what} field ${JSON.stringify(text)} that is not octal`);
  return parseInt(text, 8);
}

/** PAX records, "<length> <key>=<value>\n" each, the length counting the whole record. */
function parsePax(body: Buffer): Array<[string, string]> {
  const records: Array<[string, string]> = [];
  let at = 0;
  while (at < body.length) {
    const space = body.indexOf(0x20, at);
    const digits = space === -1 ? '' : body.toString('latin1', at, space);
    const length = /^[0-9]+$/.test(digits) ? Number(digits) : NaN;
    if (!Number.isSafeInteger(length) || length <= space - at + 1 || at + length > body.length || body[at + length - 1] !== 0x0a) {
      throw new TarFormatError('a malformed PAX record');
    }
    const record = body.toString('latin1', space + 1, at + length - 1);
    const eq = record.indexOf('=');
    if (eq <= 0) throw new TarFormatError('a malformed PAX record');
    records.push([record.slice(0, eq), record.slice(eq + 1)]);
    at += length;
  }
  return records;
}
