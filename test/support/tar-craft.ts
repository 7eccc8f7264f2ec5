/**
 * Hand-made tar archives for the tar walker's tests: headers written field by field (with their
 * checksums), PAX and GNU extended headers, and the shapes real writers never make but hostile
 * layers do (header-only entries claiming a body, base-256 sizes, bad checksums).
 */

export interface HeaderSpec {
  name: string;
  type?: string;
  size?: number;
  /** The size field as raw bytes (base-256 and the like). */
  sizeField?: Buffer;
  /** The mtime field as raw bytes. */
  mtimeField?: Buffer;
  linkname?: string;
  prefix?: string;
  magic?: 'ustar' | 'gnu' | 'v7';
  badChecksum?: boolean;
}

/** A 12-byte GNU base-256 numeric field holding `n` (which fits in 32 bits). */
export function base256(n: number): Buffer {
  const field = Buffer.alloc(12);
  field[0] = 0x80;
  field.writeUInt32BE(n, 8);
  return field;
}

/** One 512-byte header, written field by field as the tar formats lay them out. */
export function header(spec: HeaderSpec): Buffer {
  const b = Buffer.alloc(512);
  b.write(spec.name, 0, 100, 'latin1');
  b.write('0000644\0', 100, 'latin1');
  b.write('0000000\0', 108, 'latin1');
  b.write('0000000\0', 116, 'latin1');
  if (spec.sizeField) spec.sizeField.copy(b, 124);
  else b.write(`${(spec.size ?? 0).toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  if (spec.mtimeField) spec.mtimeField.copy(b, 136);
  else b.write('00000000000\0', 136, 'latin1');
  b.write(spec.type ?? '0', 156, 'latin1');
  b.write(spec.linkname ?? '', 157, 100, 'latin1');
  const magic = spec.magic ?? 'ustar';
  if (magic === 'ustar') b.write('ustar\u000000', 257, 'latin1');
  if (magic === 'gnu') b.write('ustar  \0', 257, 'latin1');
  if (spec.prefix) b.write(spec.prefix, 345, 155, 'latin1');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of b) sum += c;
  b.write(`${(spec.badChecksum ? sum + 1 : sum).toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return b;
}

export const pad = (data: Buffer): Buffer => Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
export const file = (spec: HeaderSpec, body: Buffer = Buffer.alloc(spec.size ?? 0)): Buffer =>
  Buffer.concat([header({ ...spec, size: spec.size ?? body.length }), pad(body)]);
export const END = Buffer.alloc(1024);

/** A PAX extended header ('x', or 'g') carrying `records`. */
export function pax(records: Record<string, string>, type = 'x'): Buffer {
  const body = Buffer.from(
    Object.entries(records)
      .map(([k, v]) => {
        const rest = ` ${k}=${v}\n`;
        let length = rest.length + 1;
        while (String(length).length + rest.length !== length) length++;
        return `${length}${rest}`;
      })
      .join(''),
  );
  return file({ name: 'PaxHeader', type }, body);
}
