import { KeyedMutex } from '../../common/keyed-mutex.js';

/**
 * Bytes promised to uploads and imports still running, per project. An image's size is recorded
 * only once its data is stored, so a quota check that counted recorded sizes alone would let
 * concurrent uploads that each fit pass together. Every check and grant for one project runs
 * under that project's lock and counts what is recorded plus what is reserved.
 *
 * The ledger lives in the image service's process: several processes sharing one database each
 * keep their own (run one image service per store, as the operator guide says).
 */
export class Reservation {
  private released = false;

  constructor(
    private readonly ledger: StorageReservations,
    readonly owner: string,
    public bytes: number,
  ) {}

  /** Gives the bytes back (idempotent); call it once the image's size is recorded, or on failure. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.ledger.drop(this);
  }

  get active(): boolean {
    return !this.released;
  }
}

/** What a grant answers: the reservation, or how many bytes were left when it could not fit. */
export type Grant = { reservation: Reservation } | { remaining: number };

export class StorageReservations {
  private readonly held = new Map<string, Set<Reservation>>();
  private readonly decisions = new KeyedMutex();

  /** `recorded`: the bytes the project's live images have recorded (ImageRepository.usage). */
  constructor(private readonly recorded: (owner: string) => Promise<number>) {}

  /** Runs `task` alone among the project's quota decisions (checks and grants). */
  exclusive<T>(owner: string, task: () => Promise<T>): Promise<T> {
    return this.decisions.run(owner, task);
  }

  /** Bytes reserved by `owner`'s running uploads and imports. */
  reserved(owner: string): number {
    let sum = 0;
    for (const r of this.held.get(owner) ?? []) sum += r.bytes;
    return sum;
  }

  /** Reserves `bytes` for `owner` if recorded + reserved + bytes stays within `limit`. */
  async reserve(owner: string, bytes: number, limit: number): Promise<Grant> {
    return this.exclusive(owner, async () => {
      const remaining = await this.remaining(owner, limit);
      if (bytes > remaining) return { remaining };
      const reservation = new Reservation(this, owner, bytes);
      let set = this.held.get(owner);
      if (!set) this.held.set(owner, (set = new Set()));
      set.add(reservation);
      return { reservation };
    });
  }

  /**
   * Grows `r` to at least `atLeast` bytes, and up to `preferred` when that fits too (so a stream
   * of unknown length asks again only every so often). The remaining count excludes `r` itself.
   */
  async extend(r: Reservation, atLeast: number, preferred: number, limit: number): Promise<Grant> {
    return this.exclusive(r.owner, async () => {
      const remaining = (await this.remaining(r.owner, limit)) + r.bytes;
      if (!r.active || atLeast > remaining) return { remaining: Math.max(0, remaining - r.bytes) };
      r.bytes = Math.max(r.bytes, Math.min(preferred, remaining));
      return { reservation: r };
    });
  }

  /** @internal Reservation.release. */
  drop(r: Reservation): void {
    const set = this.held.get(r.owner);
    set?.delete(r);
    if (set?.size === 0) this.held.delete(r.owner);
  }

  private async remaining(owner: string, limit: number): Promise<number> {
    // Reserved before recorded: a reservation released in between (its image's size now
    // recorded) is counted twice rather than not at all.
    const reserved = this.reserved(owner);
    const recorded = await this.recorded(owner);
    return Math.max(0, limit - recorded - reserved);
  }
}
