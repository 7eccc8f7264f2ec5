import { LABEL_INSTANCE, LABEL_IPV4, LABEL_NETWORK } from '../runtime/types.js';

/**
 * Which containers hold which address on which project network, from the containers' labels,
 * kept in memory: filled by one listing of the engine's labelled containers, then kept current by
 * this agent's own creates and removals and by the engine's create and destroy events (other
 * compute hosts sharing the engine). A create asks it instead of listing containers, so a create
 * costs the same with 500 instances on the host as with none.
 */
export class AddressBook {
  /** `network\0ipv4` → instance uuids labelled with it (more than one only when something went wrong). */
  private readonly holders = new Map<string, Set<string>>();
  private readonly keyOf = new Map<string, string>();

  /** Records a container from its labels; a container without a network and address is ignored. */
  add(labels: Record<string, string> | null | undefined): void {
    const [uuid, name, ipv4] = [labels?.[LABEL_INSTANCE], labels?.[LABEL_NETWORK], labels?.[LABEL_IPV4]];
    if (!uuid || !name || !ipv4) return;
    this.remove(uuid);
    const key = `${name}\0${ipv4}`;
    const set = this.holders.get(key) ?? new Set<string>();
    set.add(uuid);
    this.holders.set(key, set);
    this.keyOf.set(uuid, key);
  }

  remove(uuid: string): void {
    const key = this.keyOf.get(uuid);
    if (key === undefined) return;
    this.keyOf.delete(uuid);
    const set = this.holders.get(key);
    set?.delete(uuid);
    if (set?.size === 0) this.holders.delete(key);
  }

  holdersOf(name: string, ipv4: string): string[] {
    return [...(this.holders.get(`${name}\0${ipv4}`) ?? [])];
  }

  get size(): number {
    return this.keyOf.size;
  }
}
