import { Duplex, Transform, type TransformCallback } from 'node:stream';
import { agentError, instanceNotFound, invalidState } from '../errors.js';
import type { DockerApi } from './docker-api.js';
import { inspectContainer } from './docker-inspect.js';
import type { ContainerNames } from './container-names.js';

/** ContainerRuntime.checkConsole on the engine: running, and created with an open stdin (docker-create-body.ts). */
export async function checkConsole(api: DockerApi, names: ContainerNames, uuid: string): Promise<void> {
  const c = await inspectContainer(api, names, uuid);
  if (!c) throw instanceNotFound(uuid);
  if (c.State?.Status !== 'running') throw invalidState(uuid, 'open the console of', c.State?.Status ?? 'unknown');
  if (c.Config?.OpenStdin !== true) {
    throw agentError('CONSOLE_UNAVAILABLE', `instance ${uuid} was created without a console (no open stdin); rebuild it to get one`, {
      uuid,
      reason: 'NO_OPEN_STDIN',
    });
  }
}

/**
 * ContainerRuntime.attachConsole on the engine: Docker's attach, hijacked (stdin, stdout, stderr,
 * stream). Containers have no TTY, so the engine multiplexes stdout and stderr into frames
 * (log-frames.ts); the console reads their payloads only.
 */
export async function attachConsole(api: DockerApi, names: ContainerNames, uuid: string): Promise<Duplex> {
  await checkConsole(api, names, uuid);
  const { socket, head } = await api.upgrade({
    path: `/containers/${await names.of(uuid)}/attach`,
    query: { stream: 1, stdin: 1, stdout: 1, stderr: 1 },
    what: 'attach to the console',
  });
  const frames = new FrameReader();
  if (head.length) frames.write(head);
  socket.pipe(frames);
  return new AttachedConsole(socket, frames);
}

/** The hijacked connection as one stream: writes go to the guest's stdin, reads are its output's payloads. */
class AttachedConsole extends Duplex {
  constructor(
    private readonly socket: Duplex,
    private readonly frames: FrameReader,
  ) {
    super();
    frames.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) frames.pause();
    });
    frames.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.destroy());
  }
  override _read(): void {
    this.frames.resume();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.socket.write(chunk, cb);
  }
  override _final(cb: (err?: Error | null) => void): void {
    this.socket.end();
    cb();
  }
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.socket.destroy();
    cb(err);
  }
}

/** Payloads of Docker's multiplexed stream: [stream, 0, 0, 0, size uint32 BE] then size bytes. */
export class FrameReader extends Transform {
  private pending: Buffer = Buffer.alloc(0);
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let off = 0;
    while (this.pending.length - off >= 8) {
      const size = this.pending.readUInt32BE(off + 4);
      if (this.pending.length - off < 8 + size) break;
      if (this.pending[off] === 1 || this.pending[off] === 2) this.push(this.pending.subarray(off + 8, off + 8 + size));
      off += 8 + size;
    }
    this.pending = this.pending.subarray(off);
    cb();
  }
}
