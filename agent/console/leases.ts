import { randomBytes } from 'node:crypto';

/**
 * `token`: the connection names the lease's path in its first line (handshake.ts). `port`: the
 * next connection to the port takes the lease, with no first line, for a proxy that sends none
 * (nova-serialproxy of Zed cannot: see docs/nova-mode.md).
 */
export type LeaseKind = 'token' | 'port';

/** One authorisation to connect to one instance's console: good for a single connection until it expires. */
export interface ConsoleLease {
  uuid: string;
  port: number;
  kind: LeaseKind;
  token: string;
  /** Milliseconds since the epoch. */
  expiresAt: number;
}

export type ClaimResult = { ok: true; lease: ConsoleLease } | { ok: false; reason: 'unknown' | 'expired' | 'wrong_port' | 'no_port_lease' };

/**
 * The console leases the agent handed out: one-time, bound to an instance and its endpoint's
 * port, with an expiry. A lease leaves the book when it is claimed (its one connection) or when
 * it expires; `onExpired` then says which instance lost a lease, so its endpoint can close when
 * nothing else holds it open.
 */
export class ConsoleLeases {
  private readonly byToken = new Map<string, { lease: ConsoleLease; timer: NodeJS.Timeout }>();

  constructor(private readonly o: { ttlMs: number; onExpired: (uuid: string) => void }) {}

  issue(uuid: string, port: number, kind: LeaseKind = 'token'): ConsoleLease {
    const token = randomBytes(24).toString('base64url');
    const lease: ConsoleLease = { uuid, port, kind, token, expiresAt: Date.now() + this.o.ttlMs };
    const timer = setTimeout(() => {
      this.byToken.delete(token);
      this.o.onExpired(uuid);
    }, this.o.ttlMs);
    timer.unref();
    this.byToken.set(token, { lease, timer });
    return lease;
  }

  /** Takes a token lease for a connection on `port`: valid once, for its own instance's port, before it expires. */
  claim(port: number, token: string): ClaimResult {
    const entry = this.byToken.get(token);
    if (!entry || entry.lease.kind !== 'token') return { ok: false, reason: 'unknown' };
    if (entry.lease.port !== port) return { ok: false, reason: 'wrong_port' };
    return this.take(token, entry.lease);
  }

  /** Takes the oldest unexpired port lease of `port` for a connection that named none. */
  claimPort(port: number): ClaimResult {
    for (const [token, { lease }] of this.byToken) {
      if (lease.kind === 'port' && lease.port === port && Date.now() < lease.expiresAt) return this.take(token, lease);
    }
    return { ok: false, reason: 'no_port_lease' };
  }

  /** Whether the port has a port lease waiting for its connection. */
  hasPortLease(port: number): boolean {
    for (const { lease } of this.byToken.values()) if (lease.kind === 'port' && lease.port === port && Date.now() < lease.expiresAt) return true;
    return false;
  }

  /** Unclaimed, unexpired leases of the instance. */
  pending(uuid: string): number {
    let n = 0;
    for (const { lease } of this.byToken.values()) if (lease.uuid === uuid && Date.now() < lease.expiresAt) n++;
    return n;
  }

  /** Forgets every lease of the instance (its console closed: its container went). */
  revoke(uuid: string): void {
    for (const [token, { lease, timer }] of this.byToken) {
      if (lease.uuid !== uuid) continue;
      clearTimeout(timer);
      this.byToken.delete(token);
    }
  }

  clear(): void {
    for (const { timer } of this.byToken.values()) clearTimeout(timer);
    this.byToken.clear();
  }

  private take(token: string, lease: ConsoleLease): ClaimResult {
    const entry = this.byToken.get(token)!;
    clearTimeout(entry.timer);
    this.byToken.delete(token);
    if (Date.now() >= lease.expiresAt) {
      this.o.onExpired(lease.uuid);
      return { ok: false, reason: 'expired' };
    }
    return { ok: true, lease };
  }
}
