import { createServer, type Server } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../common/log.js';
import { agentError } from '../errors.js';
import type { ContainerRuntime } from '../runtime/types.js';
import { consolePath, readHead, statusLine } from './handshake.js';
import { ConsoleLeases, type ClaimResult, type LeaseKind } from './leases.js';
import { PortPool, type PortRange } from './ports.js';

/** What a console request answers: where to connect, and the one-time path that gets through. */
export interface ConsoleGrant {
  host: string;
  port: number;
  /** The `CONNECT` path of the connection's first line (handshake.ts); null for a port lease. */
  path: string | null;
  expires_at: string;
}

/** A listening endpoint; `null` from `listen` when the port is taken. */
export interface ConsoleListener {
  close(): Promise<void>;
}
export type Listen = (port: number, host: string, onConnection: (socket: Duplex, remote?: string) => void) => Promise<ConsoleListener | null>;

export interface ConsoleOptions {
  enabled: boolean;
  range: PortRange;
  /** The address endpoints listen on and grants name ([serial_console] proxyclient_address). */
  host: string;
  ttlMs: number;
  runtime: ContainerRuntime;
  log: Logger;
  /** Addresses a connection under a port lease may come from ([serial_console] proxy_clients); empty: any. */
  proxyClients?: string[];
  /** How long a connection may take to send its first line. Default 10 s. */
  headTimeoutMs?: number;
  /** With a port lease pending: how long a silent connection is given to start a first line. Default 300 ms. */
  idleMs?: number;
  /** Default: a TCP server on host:port. */
  listen?: Listen;
}

interface Endpoint {
  port: number;
  listener: ConsoleListener;
  /** The one connection bridged to the guest (nova's libvirt allows one per console). */
  session: Duplex | null;
  busy: boolean;
}

/**
 * Serial consoles of the instances on this host. `open` gives a one-time, expiring lease on the
 * instance's endpoint (a TCP port of [serial_console] port_range, opened on demand); a
 * connection gets through to the container's stdin and stdout only with an unexpired token of
 * that instance and port, and only one at a time. An endpoint closes when it has neither a
 * connection nor a pending lease.
 */
export class Consoles {
  private readonly endpoints = new Map<string, Endpoint>();
  private readonly opening = new Map<string, Promise<Endpoint>>();
  private readonly ports: PortPool;
  private readonly leases: ConsoleLeases;

  constructor(private readonly o: ConsoleOptions) {
    this.ports = new PortPool(o.range);
    this.leases = new ConsoleLeases({ ttlMs: o.ttlMs, onExpired: (uuid) => void this.closeIfIdle(uuid) });
  }

  async open(uuid: string, kind: LeaseKind = 'token'): Promise<ConsoleGrant> {
    if (!this.o.enabled) throw agentError('CONSOLE_UNAVAILABLE', 'serial consoles are disabled on this host ([serial_console] enabled)', { uuid });
    await this.o.runtime.checkConsole(uuid);
    const ep = await this.endpoint(uuid);
    const lease = this.leases.issue(uuid, ep.port, kind);
    const path = kind === 'token' ? consolePath(lease.token) : null;
    return { host: this.o.host, port: ep.port, path, expires_at: new Date(lease.expiresAt).toISOString() };
  }

  /** The port of the instance's open endpoint, or null (nova's validate_console_port compares it). */
  port(uuid: string): number | null {
    return this.endpoints.get(uuid)?.port ?? null;
  }

  /** One connection to the endpoint of `uuid`: its first line, the lease, then the bridge. */
  async connect(uuid: string, port: number, socket: Duplex, remote?: string): Promise<void> {
    socket.on('error', () => undefined);
    // A connection that opened with a first line is answered with a status line; one that sent
    // none (a proxy bridging a user's bytes) is closed without a byte, which would reach the user.
    let answer = true;
    const refuse = (status: number) => {
      if (answer) socket.end(statusLine(status));
      else socket.end();
      void this.closeIfIdle(uuid);
    };
    const portLease = this.leases.hasPortLease(port);
    const head = await readHead(socket, { timeoutMs: this.o.headTimeoutMs ?? 10_000, ...(portLease ? { idleMs: this.o.idleMs ?? 300 } : {}) });
    let claim: ClaimResult;
    let input: Buffer;
    if (head.ok) {
      claim = this.leases.claim(port, head.token);
      input = head.rest;
    } else if (head.raw && this.clientAllowed(remote)) {
      // No first line: only a port lease lets it through, and its bytes are the user's.
      claim = this.leases.claimPort(port);
      if (!claim.ok && claim.reason === 'no_port_lease') return refuse(head.status);
      answer = false;
      input = head.raw;
    } else return refuse(head.status);
    const ep = this.endpoints.get(uuid);
    if (!claim.ok || claim.lease.uuid !== uuid || !ep || ep.port !== port) {
      this.o.log.warn({ uuid, port, reason: claim.ok ? 'wrong_instance' : claim.reason }, 'console connection refused');
      return refuse(403);
    }
    if (ep.busy) {
      this.o.log.warn({ uuid, port }, 'console connection refused: the console is in use');
      return refuse(409);
    }
    ep.busy = true;
    let guest: Duplex;
    try {
      guest = await this.o.runtime.attachConsole(uuid);
    } catch (err) {
      this.o.log.warn({ err, uuid }, 'could not attach to the console of the container');
      ep.busy = false;
      return refuse(502);
    }
    ep.session = socket;
    if (answer) socket.write(statusLine(200));
    const finish = () => {
      if (ep.session !== socket) return;
      ep.session = null;
      ep.busy = false;
      guest.destroy();
      socket.end();
      void this.closeIfIdle(uuid);
    };
    guest.on('error', finish);
    guest.on('close', finish);
    guest.on('end', finish);
    socket.on('end', finish);
    socket.on('close', finish);
    guest.on('data', (chunk: Buffer) => socket.write(chunk));
    socket.on('data', (chunk: Buffer) => guest.write(chunk));
    if (input.length) guest.write(input);
    socket.resume();
    this.o.log.info({ uuid, port }, 'console connected');
  }

  /** Closes every endpoint and connection (the agent stops). */
  async close(): Promise<void> {
    this.leases.clear();
    const all = [...this.endpoints.keys()];
    for (const uuid of all) await this.closeEndpoint(uuid);
  }

  /** Forgets the console of an instance that went away. */
  async forget(uuid: string): Promise<void> {
    this.leases.revoke(uuid);
    await this.closeEndpoint(uuid);
  }

  private clientAllowed(remote: string | undefined): boolean {
    const allowed = this.o.proxyClients ?? [];
    if (allowed.length === 0) return true;
    const addr = remote?.startsWith('::ffff:') ? remote.slice(7) : remote;
    return addr !== undefined && allowed.includes(addr);
  }

  private endpoint(uuid: string): Promise<Endpoint> {
    const open = this.endpoints.get(uuid);
    if (open) return Promise.resolve(open);
    let p = this.opening.get(uuid);
    if (!p) {
      p = this.listenFor(uuid).finally(() => this.opening.delete(uuid));
      this.opening.set(uuid, p);
    }
    return p;
  }

  private async listenFor(uuid: string): Promise<Endpoint> {
    const listen = this.o.listen ?? tcpListen;
    const { port, value: listener } = await this.ports.take((p) => listen(p, this.o.host, (socket, remote) => void this.connect(uuid, p, socket, remote)));
    const ep: Endpoint = { port, listener, session: null, busy: false };
    this.endpoints.set(uuid, ep);
    this.o.log.info({ uuid, port, host: this.o.host }, 'console endpoint open');
    return ep;
  }

  private async closeIfIdle(uuid: string): Promise<void> {
    const ep = this.endpoints.get(uuid);
    if (!ep || ep.busy || this.leases.pending(uuid) > 0) return;
    await this.closeEndpoint(uuid);
  }

  private async closeEndpoint(uuid: string): Promise<void> {
    const ep = this.endpoints.get(uuid);
    if (!ep) return;
    this.endpoints.delete(uuid);
    ep.session?.destroy();
    await ep.listener.close().catch(() => undefined);
    this.ports.release(ep.port);
    this.o.log.info({ uuid, port: ep.port }, 'console endpoint closed');
  }
}

/** A TCP server on host:port; null when the port is taken. */
export const tcpListen: Listen = (port, host, onConnection) =>
  new Promise((resolve) => {
    const server: Server = createServer({ pauseOnConnect: false }, (s) => {
      s.setNoDelay(true);
      onConnection(s, s.remoteAddress);
    });
    server.once('error', () => resolve(null));
    server.listen({ port, host, exclusive: true }, () =>
      resolve({
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
          }),
      }),
    );
  });
