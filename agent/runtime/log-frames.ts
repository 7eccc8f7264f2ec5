import { readBody } from '../../common/http-client.js';
import { instanceNotFound } from '../errors.js';
import { refusal, type DockerApi } from './docker-api.js';
/**
 * Docker multiplexes stdout and stderr of a container without a TTY into frames with an 8-byte
 * header: [stream, 0, 0, 0, size as uint32 big-endian], then `size` bytes of payload.
 * https://docs.docker.com/engine/api/v1.41/#operation/ContainerAttach
 */
const HEADER = 8;

/** The newest `tail` lines (at most `maxBytes`) of the console of the container `name` of instance `uuid`. */
export async function containerLogs(api: DockerApi, uuid: string, name: string, opts: { tail: number; maxBytes: number }): Promise<string> {
  const res = await api.raw({ path: `/containers/${name}/logs`, query: { stdout: 1, stderr: 1, tail: opts.tail }, what: 'read the console log' });
  if (res.status === 404) {
    res.body.resume();
    throw instanceNotFound(uuid);
  }
  if (res.status >= 300) throw refusal('read the console log', res.status, (await readBody(res.body, 65536)).toString('utf8'));
  return readLogFrames(res.body, opts.maxBytes);
}

/** Reads a multiplexed log stream, keeping only the newest `maxBytes` of payload. */
export async function readLogFrames(stream: AsyncIterable<Buffer | string>, maxBytes: number): Promise<string> {
  const kept = new TailBuffer(maxBytes);
  let pending: Buffer = Buffer.alloc(0);
  for await (const chunk of stream) {
    pending = pending.length ? Buffer.concat([pending, toBuffer(chunk)]) : toBuffer(chunk);
    let offset = 0;
    while (pending.length - offset >= HEADER) {
      const size = pending.readUInt32BE(offset + 4);
      if (pending.length - offset < HEADER + size) break;
      kept.push(pending.subarray(offset + HEADER, offset + HEADER + size));
      offset += HEADER + size;
    }
    pending = pending.subarray(offset);
  }
  return kept.toString();
}

/** Payload bytes, newest kept; the cut may split a UTF-8 sequence, which decodes as U+FFFD. */
class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly max: number) {}

  push(b: Buffer): void {
    this.chunks.push(Buffer.from(b));
    this.size += b.length;
    while (this.size > this.max && this.chunks.length) {
      const first = this.chunks[0]!;
      const excess = this.size - this.max;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.size -= excess;
      }
    }
  }

  toString(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

const toBuffer = (c: Buffer | string): Buffer => (typeof c === 'string' ? Buffer.from(c) : c);

/** Encodes frames the way Docker does; for tests and fakes. */
export function encodeLogFrame(stream: 1 | 2, payload: string | Buffer): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const header = Buffer.alloc(HEADER);
  header[0] = stream;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}
