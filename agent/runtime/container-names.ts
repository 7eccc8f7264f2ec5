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
    if (res.status === 404 || !res.body) return primary;
    const labels = res.body.Config?.Labels ?? {};
    const owner = labels[LABEL_HOST];
    // Another host's container of the same instance holds the usual name; an unlabelled one is
    // left to the caller's check (never this host's).
    const name = labels[LABEL_INSTANCE] === uuid && owner !== undefined && owner !== '' && owner !== this.host ? this.alternate(uuid) : primary;
    this.known.set(uuid, name);
    return name;
  }

  /** The container is gone: the next create may take the usual name again. */
  forget(uuid: string): void {
    this.known.delete(uuid);
  }
}
