import { connect, type Socket } from 'node:net';
import { Transform, type TransformCallback } from 'node:stream';
import { BerthError } from '../../common/errors.js';

/** What get_serial_console answers (nova's connect_info), as far as a direct client needs it. */
export interface ConsoleConnectInfo {
  host: string;
  port: number;
  /** Null: a port lease, the connection itself is what the grant lets through (nova mode). */
  internal_access_path: string | null;
}

/**
 * Connects to an instance's console endpoint as nova-serialproxy does: TCP to host:port, the
 * `CONNECT <internal_access_path> HTTP/1.1` line, and the agent's status line. Resolves with the
 * socket (what follows is the console) and any console bytes that came with the status.
 */
export function connectConsole(info: ConsoleConnectInfo, timeoutMs = 10_000): Promise<{ socket: Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: info.host, port: info.port });
    let buf = Buffer.alloc(0);
    const fail = (message: string, status = 503) => {
      socket.destroy();
      reject(new BerthError('CONSOLE_REFUSED', message, { status }));
    };
    const timer = setTimeout(() => fail(`the console at ${info.host}:${info.port} did not answer`), timeoutMs);
    const path = info.internal_access_path;
    socket.once('connect', () => {
      if (path !== null) return socket.write(`CONNECT ${path} HTTP/1.1\r\n\r\n`);
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.pause();
      resolve({ socket, rest: Buffer.alloc(0) });
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      fail(`could not connect to the console at ${info.host}:${info.port}: ${(err as NodeJS.ErrnoException).code ?? err.message}`);
    });
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      const line = buf.subarray(0, end).toString('latin1').split('\r\n')[0] ?? '';
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(line)?.[1] ?? 0);
      if (status !== 200) {
        const why = status === 409 ? 'the console is in use by another connection' : status === 403 ? 'the console refused the authorisation' : line;
        return fail(`console refused: ${why}`, status || 502);
      }
      socket.removeAllListeners('error');
      resolve({ socket, rest: buf.subarray(end + 4) });
    };
    if (path !== null) socket.on('data', onData);
  });
}

/**
 * Passes input on to the console until the escape sequence, `~.` at the start of a line (as
 * ssh's); then emits 'escape' and passes nothing more. A `~` followed by anything else goes on.
 */
export class EscapeFilter extends Transform {
  /** 0: at a line start, 1: a `~` held at a line start, 2: within a line. */
  private state: 0 | 1 | 2 = 0;
  private escaped = false;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.escaped) return cb();
    const out: number[] = [];
    for (const byte of chunk) {
      if (this.state === 1) {
        if (byte === 0x2e) {
          this.escaped = true;
          break;
        }
        out.push(0x7e);
        this.state = 2;
      }
      if (this.state === 0 && byte === 0x7e) {
        this.state = 1;
        continue;
      }
      out.push(byte);
      this.state = byte === 0x0a || byte === 0x0d ? 0 : 2;
    }
    if (out.length) this.push(Buffer.from(out));
    if (this.escaped) this.emit('escape');
    cb();
  }
}
