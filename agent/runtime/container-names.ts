import type { DockerApi } from './docker-api.js';
import { containerName, LABEL_HOST, LABEL_INSTANCE } from './types.js';

/** What a name lookup reads of a container: its labels. */
interface Labelled {
  Config?: { Labels?: Record<string, string> | null };
}

/** Docker's container name alphabet after the first character: `[a-zA-Z0-9_.-]`. */
const hostPart = (host: string): string => host.replace(/[^a-zA-Z0-9_.-]/g, '-');

/**
 * The engine name of the container of an instance on this compute host. Normally `berth-<uuid>`;
 * when that name already belongs to the container of the same instance on another compute host
 * sharing the engine (the source or destination of a move between two nodes on one dockerd),
 * this host's container is `berth-<uuid>.<host>`. Each host so addresses only its own container,
 * and a host configured before this existed keeps finding its containers under their old name.
 * A name found is remembered until `forget` (the container removed).
 */
export class ContainerNames {
  private readonly known = new Map<string, string>();

  constructor(
    private readonly api: DockerApi,
    private readonly host: string | undefined,
  ) {}

  /** The name for another host's copy: only used when `berth-<uuid>` is taken by another host. */
  alternate(uuid: string): string {
    return `${containerName(uuid)}.${hostPart(this.host ?? '')}`;
  }

  /** The name of this host's container of `uuid`, existing or to be created. */
  async of(uuid: string): Promise<string> {
    const cached = this.known.get(uuid);
    if (cached) return cached;
    const primary = containerName(uuid);
    if (!this.host) return primary;
    const res = await this.api.json<Labelled>({ path: `/containers/${primary}/json`, accept: [404], what: 'inspect the container' });
    if (res.status === 404 || !res.body) {
      // The other host removed its container (it reaped an evacuation) after this one took the
      // second name, and this agent restarted since: its container is still under that name.
      const alt = await this.api.json<Labelled>({ path: `/containers/${this.alternate(uuid)}/json`, accept: [404], what: 'inspect the container' });
      if (alt.status === 404 || alt.body?.Config?.Labels?.[LABEL_INSTANCE] !== uuid) return primary;
      this.known.set(uuid, this.alternate(uuid));
      return this.alternate(uuid);
    }
    const labels = res.body.Config?.Labels ?? {};
    const owner = labels[LABEL_HOST];
    // Another host's container of the same instance holds the usual name; an unlabelled one is
    // left to the caller's check (never this host's).
    const name = labels[LABEL_INSTANCE] === uuid && owner !== undefined && owner !== '' && owner !== this.host ? this.alternate(uuid) : primary;
    this.known.set(uuid, name);
    return name;
  }

  /**
   * The key of the container's host network link (veth), unique on the host's kernel: the uuid
   * under `berth-<uuid>`, `<uuid>.<host>` under the second name, so two hosts' containers of one
   * instance on one kernel (a shared engine) each keep their own link.
   */
  static linkKey(uuid: string, containerNameSeen: string | undefined): string {
    const name = containerNameSeen?.replace(/^\//, '');
    const primary = containerName(uuid);
    return name && name.startsWith(`${primary}.`) ? name.slice('berth-'.length) : uuid;
  }

  /** The container is gone: the next create may take the usual name again. */
  forget(uuid: string): void {
    this.known.delete(uuid);
  }
}
