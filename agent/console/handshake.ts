import type { Duplex } from 'node:stream';

/** The largest request head a console connection may send before its bytes go to the guest. */
export const MAX_HEAD_BYTES = 2048;

/** The path a connection names (`internal_access_path` in nova's ConsoleAuthToken) for a token. */
export function consolePath(token: string): string {
  return `/berth-console?token=${encodeURIComponent(token)}`;
}

/**
 * `ok`: a `CONNECT` line naming a token, and what came after it. Otherwise `status` says why not,
 * and `raw` holds what the connection sent when it was no such line (or nothing within `idleMs`):
 * the input of a connection under a port lease (leases.ts).
 */
export type Head = { ok: true; token: string; rest: Buffer } | { ok: false; status: 400 | 408; raw?: Buffer };

const CONNECT = Buffer.from('CONNECT ');

/**
 * Reads the one line a console connection opens with, as nova-serialproxy sends it when the
 * console has an internal_access_path (nova/console/websocketproxy.py): `CONNECT <path>
 * HTTP/1.1`, a blank line. What follows the blank line is already the user's input (`rest`).
 * With `idleMs`, a connection that sends nothing for that long, or starts with anything but
 * `CONNECT `, is answered at once with its bytes as `raw`.
 */
export function readHead(socket: Duplex, o: { timeoutMs: number; idleMs?: number }): Promise<Head> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const done = (h: Head) => {
      clearTimeout(timer);
      clearTimeout(idle);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('error', onEnd);
      socket.pause();
      resolve(h);
    };
    const onEnd = () => done({ ok: false, status: 400 });
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const n = Math.min(buf.length, CONNECT.length);
      if (!buf.subarray(0, n).equals(CONNECT.subarray(0, n))) return done({ ok: false, status: 400, raw: buf });
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > MAX_HEAD_BYTES) done({ ok: false, status: 400 });
        return;
      }
      if (end > MAX_HEAD_BYTES) return done({ ok: false, status: 400 });
      const line = buf.subarray(0, end).toString('latin1').split('\r\n')[0]!;
      const m = /^CONNECT (\S+) HTTP\/1\.[01]$/.exec(line);
      const token = m ? new URL(m[1]!, 'http://console.invalid').searchParams.get('token') : null;
      if (!token) return done({ ok: false, status: 400 });
      done({ ok: true, token, rest: buf.subarray(end + 4) });
    };
    const timer = setTimeout(() => done({ ok: false, status: 408 }), o.timeoutMs);
    const idle = o.idleMs === undefined ? undefined : setTimeout(() => buf.length === 0 && done({ ok: false, status: 408, raw: buf }), o.idleMs);
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onEnd);
  });
}

const REASONS: Record<number, string> = { 200: 'OK', 400: 'Bad Request', 403: 'Forbidden', 408: 'Request Timeout', 409: 'Conflict', 502: 'Bad Gateway' };

/** The status line answering the head; nova-serialproxy looks for "200" in it and for the blank line. */
export function statusLine(status: number): string {
  return `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\n\r\n`;
}
