import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

/**
 * A minimal WebSocket client (RFC 6455) for tests that talk to nova-serialproxy: the opening
 * handshake with the `binary` subprotocol (as Tempest's client asks), masked binary frames out,
 * data frames in (fragments joined; pings answered; a close frame ends it).
 */
export class TestWebSocket {
  private buf = Buffer.alloc(0);
  private received = '';
  closed = false;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (c: Buffer) => this.onData(c));
    socket.on('close', () => (this.closed = true));
  }

  /** Connects to `url` (ws://host:port/path?query); rejects unless the server switches protocols. */
  static open(url: string, timeoutMs = 10_000): Promise<TestWebSocket> {
    const u = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = connect({ host: u.hostname, port: Number(u.port || 80) });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`no WebSocket handshake from ${u.host}`));
      }, timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('connect', () =>
        socket.write(
          [
            `GET ${u.pathname}${u.search} HTTP/1.1`,
            `Host: ${u.host}`,
            'Upgrade: websocket',
            'Connection: Upgrade',
            `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
            'Sec-WebSocket-Version: 13',
            'Sec-WebSocket-Protocol: binary',
            '',
            '',
          ].join('\r\n'),
        ),
      );
      let head = Buffer.alloc(0);
      const onHead = (c: Buffer) => {
        head = Buffer.concat([head, c]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        clearTimeout(timer);
        socket.off('data', onHead);
        const status = head.subarray(0, end).toString('latin1').split('\r\n')[0] ?? '';
        if (!/^HTTP\/1\.1 101 /.test(status)) {
          socket.destroy();
          return reject(new Error(`WebSocket handshake refused: ${status}`));
        }
        const ws = new TestWebSocket(socket);
        if (head.length > end + 4) ws.onData(head.subarray(end + 4));
        resolve(ws);
      };
      socket.on('data', onHead);
    });
  }

  /** What arrived so far, as text. */
  text(): string {
    return this.received;
  }

  send(data: string | Buffer): void {
    const payload = typeof data === 'string' ? Buffer.from(data) : data;
    const mask = randomBytes(4);
    const len = payload.length;
    const header = len < 126 ? Buffer.from([0x82, 0x80 | len]) : Buffer.from([0x82, 0x80 | 126, len >> 8, len & 0xff]);
    const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
    this.socket.write(Buffer.concat([header, mask, masked]));
  }

  close(): void {
    if (!this.closed) this.socket.end(Buffer.from([0x88, 0x80, 0, 0, 0, 0]));
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      if (this.buf.length < 2) return;
      const opcode = this.buf[0]! & 0x0f;
      let len = this.buf[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = Number(this.buf.readBigUInt64BE(2));
        off = 10;
      }
      if (this.buf[1]! & 0x80) off += 4; // a server never masks; tolerated anyway
      if (this.buf.length < off + len) return;
      const payload = this.buf.subarray(off, off + len);
      this.buf = this.buf.subarray(off + len);
      if (opcode === 0x0 || opcode === 0x1 || opcode === 0x2) this.received += payload.toString('utf8');
      else if (opcode === 0x8) this.close();
      else if (opcode === 0x9) this.socket.write(Buffer.concat([Buffer.from([0x8a, 0x80 | payload.length]), Buffer.alloc(4), payload]));
    }
  }
}
