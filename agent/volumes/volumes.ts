import { randomUUID } from 'node:crypto';
import { invalidInput } from '../../common/errors.js';
import { KeyedMutex } from '../../common/keyed-mutex.js';
import type { Logger } from '../../common/log.js';
import type { Volume, VolumeAttach, VolumeChange, VolumeCreate, VolumeStatus } from '../client/volumes.js';
import { agentError, instanceNotFound } from '../errors.js';
import type { VolumeBind } from '../runtime/types.js';
import type { VolumeRecord, VolumeRecords } from './records.js';
import type { NamespaceMounts } from './ns-mounts.js';
import type { VolumeDevices } from './types.js';

export interface VolumesDeps {
  devices: VolumeDevices;
  records: VolumeRecords;
  /** The instance's container on this host (its project, and its process while it runs); null when it has none. */
  container(uuid: string): Promise<{ projectId: string | null; pid: number | null } | null>;
  /** Mounts into running containers (hot attach); without it an attach waits for the next create. */
  ns?: NamespaceMounts;
  log: Logger;
  /** `[volumes] max_size_gb`. */
  maxSizeGb: number;
  /** `[volumes] max_total_gb`: the sum of every volume's size on the host; 0: no limit. */
  maxTotalGb: number;
}

/** What an instance's create or delete asks of its volumes (InstanceManager, under the instance's lock). */
export interface InstanceVolumes {
  /** The volumes attached to the instance, mounted on the host, as binds for its new container. */
  bindsFor(uuid: string, projectId: string): Promise<(VolumeBind & { volume_id: string })[]>;
  /** The new container binds `volumeIds`; a detach that waited for a new container is done. */
  bound(uuid: string, volumeIds: readonly string[]): Promise<void>;
  /** The container is gone: its volumes are free, or (`keep`, a rebuild) wait for the next one. */
  released(uuid: string, keep: boolean): Promise<void>;
  /** The container (re)started: volumes attached while it existed are mounted into it again. */
  afterStart(uuid: string): Promise<void>;
}

type Attachment = NonNullable<VolumeRecord['attachment']>;

/** An attachment the container's config binds: no longer mounted by hand after each start. */
const plain = ({ hot: _hot, ...a }: Attachment): Attachment => a;

const STATUS: Record<'pending' | 'bound' | 'detaching', VolumeStatus> = { pending: 'reserved', bound: 'in-use', detaching: 'detaching' };
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const PROJECT = /^[A-Za-z0-9._-]{1,64}$/;
/** Every volume change takes this one key: they are few and short, and never wait on a container. */
const ALL = 'volumes';

/**
 * Local volumes (docs/volumes.md): a project's named filesystems on this host, each attached to at
 * most one instance of the same project. A caller naming a project sees and touches only that
 * project's volumes; another project's volume is VOLUME_NOT_FOUND.
 */
export class Volumes implements InstanceVolumes {
  private readonly lock = new KeyedMutex();
  constructor(private readonly d: VolumesDeps) {}

  async create(req: VolumeCreate): Promise<Volume> {
    const name = checked(req.name, NAME, 'name', 'a name of letters, digits and ._- (1 to 64, starting with a letter or digit)');
    const project = checked(req.project_id, PROJECT, 'project_id', 'a project id of letters, digits and ._- (1 to 64)');
    const size = req.size_gb;
    if (!Number.isInteger(size) || size < 1 || size > this.d.maxSizeGb) {
      throw invalidInput(`size_gb must be an integer from 1 to ${this.d.maxSizeGb}`, { field: 'size_gb' });
    }
    const rec = await this.lock.run(ALL, async () => {
      const all = this.d.records.all();
      if (all.some((v) => v.project_id === project && v.name === name)) {
        throw agentError('VOLUME_EXISTS', `project ${project} already has a volume named ${name}`, { name, project_id: project });
      }
      const total = all.reduce((n, v) => n + v.size_gb, 0);
      if (this.d.maxTotalGb > 0 && total + size > this.d.maxTotalGb) {
        throw agentError('VOLUME_QUOTA_EXCEEDED', `${size} GiB more would exceed the host's ${this.d.maxTotalGb} GiB of volumes (${total} GiB taken)`, {
          requested_gb: size,
          used_gb: total,
          limit_gb: this.d.maxTotalGb,
        });
      }
      const r: VolumeRecord = { id: randomUUID(), name, project_id: project, size_gb: size, created_at: new Date().toISOString(), attachment: null };
      await this.d.devices.provision(r.id, size);
      await this.d.records.save(r).catch(async (err: unknown) => {
        await this.d.devices.destroy(r.id).catch(() => undefined);
        throw err;
      });
      return r;
    });
    this.d.log.info({ volume_id: rec.id, project_id: project, size_gb: size }, 'volume created');
    return this.view(rec);
  }

  async list(projectId?: string): Promise<Volume[]> {
    const recs = this.d.records.all().filter((r) => projectId === undefined || r.project_id === projectId);
    return Promise.all(recs.map((r) => this.view(r)));
  }

  /** By id, or by name within `projectId`. */
  async get(ref: string, projectId?: string): Promise<Volume> {
    return this.view(this.find(ref, projectId));
  }

  async delete(ref: string, projectId?: string): Promise<void> {
    await this.lock.run(ALL, async () => {
      const rec = this.find(ref, projectId);
      if (rec.attachment) throw inUse(rec);
      await this.d.devices.destroy(rec.id);
      await this.d.records.remove(rec.id);
      this.d.log.info({ volume_id: rec.id, project_id: rec.project_id }, 'volume deleted');
    });
  }

  /**
   * Attaches a volume of the caller's project to an instance of that project; the caller holds the
   * instance's lock. No container yet: its create binds it. A container (with NamespaceMounts):
   * mounted into it now if it runs, else at its next start, and again after every start until a
   * rebuild binds it like the others. Without NamespaceMounts: at the next create or rebuild.
   */
  async attach(ref: string, req: VolumeAttach, mountPoint: string): Promise<VolumeChange> {
    return this.lock.run(ALL, async () => {
      const rec = this.find(ref, req.project_id);
      const c = await this.d.container(req.instance_uuid);
      if (c && c.projectId !== req.project_id) throw instanceNotFound(req.instance_uuid);
      const a = rec.attachment;
      if (a && a.instance_uuid === req.instance_uuid && a.mount_point === mountPoint && a.state !== 'detaching') {
        return { volume: await this.view(rec), applies: a.state === 'pending' ? 'next-create' : a.hot && !c?.pid ? 'next-start' : 'now' };
      }
      if (a) throw inUse(rec);
      const taken = this.d.records.all().find((r) => r.attachment?.instance_uuid === req.instance_uuid && r.attachment.mount_point === mountPoint);
      if (taken) throw invalidInput(`instance ${req.instance_uuid} already has volume ${taken.name} at ${mountPoint}`, { field: 'mount_point' });
      const hot = c !== null && this.d.ns !== undefined;
      if (hot && c.pid) await this.mountInto(rec.id, c.pid, mountPoint);
      const attachment: Attachment = {
        instance_uuid: req.instance_uuid,
        mount_point: mountPoint,
        attached_at: new Date().toISOString(),
        ...(hot ? { state: 'bound', hot: true } : { state: 'pending' }),
      };
      const next = { ...rec, attachment };
      await this.d.records.save(next);
      const applies = !hot ? 'next-create' : c.pid ? 'now' : 'next-start';
      this.d.log.info({ volume_id: rec.id, uuid: req.instance_uuid, mount_point: mountPoint, applies }, 'volume attached');
      return { volume: await this.view(next), applies };
    });
  }

  /** The instance a volume is attached to, for the caller to take its lock before detach. */
  instanceOf(ref: string, projectId?: string): string | null {
    return this.find(ref, projectId).attachment?.instance_uuid ?? null;
  }

  /**
   * Detaches; the caller holds the instance's lock. A volume attached to nothing is fine. One
   * mounted into a running container by an attach is unmounted there now; one the container's
   * config binds stays `detaching` until that container is removed or rebuilt.
   */
  async detach(ref: string, projectId?: string): Promise<VolumeChange> {
    return this.lock.run(ALL, async () => {
      const rec = this.find(ref, projectId);
      const a = rec.attachment;
      if (!a) return { volume: await this.view(rec), applies: 'now' };
      const c = a.state === 'pending' ? null : await this.d.container(a.instance_uuid);
      if (a.hot && c?.pid && this.d.ns) {
        await this.d.ns.unmount(c.pid, a.mount_point).catch((err: unknown) => {
          this.d.log.error({ volume_id: rec.id, uuid: a.instance_uuid, err }, 'could not unmount a volume in its container');
          throw agentError('VOLUME_FAILED', `could not unmount volume ${rec.name} in instance ${a.instance_uuid}`, { volume_id: rec.id });
        });
      }
      const waits = c !== null && !a.hot;
      const next: VolumeRecord = { ...rec, attachment: waits ? { ...a, state: 'detaching' } : null };
      await this.d.records.save(next);
      this.d.log.info({ volume_id: rec.id, uuid: a.instance_uuid, waits_for_container: waits }, 'volume detached');
      return { volume: await this.view(next), applies: waits ? 'next-create' : 'now' };
    });
  }

  async bindsFor(uuid: string, projectId: string): Promise<(VolumeBind & { volume_id: string })[]> {
    const recs = this.d.records.all().filter((r) => r.attachment?.instance_uuid === uuid && r.attachment.state !== 'detaching');
    const binds: (VolumeBind & { volume_id: string })[] = [];
    for (const r of recs) {
      // A volume only ever reaches an instance of its own project.
      if (r.project_id !== projectId) throw notFound(r.id);
      binds.push({ volume_id: r.id, source: await this.d.devices.activate(r.id), target: r.attachment!.mount_point });
    }
    return binds;
  }

  async bound(uuid: string, volumeIds: readonly string[]): Promise<void> {
    await this.update(uuid, (r, a) => (a.state === 'detaching' ? null : volumeIds.includes(r.id) ? { ...plain(a), state: 'bound' } : a));
  }

  async released(uuid: string, keep: boolean): Promise<void> {
    await this.update(uuid, (_r, a) => (keep && a.state !== 'detaching' ? { ...plain(a), state: 'pending' } : null));
  }

  async afterStart(uuid: string): Promise<void> {
    const hot = this.d.records.all().filter((r) => r.attachment?.instance_uuid === uuid && r.attachment.hot && r.attachment.state === 'bound');
    if (!hot.length || !this.d.ns) return;
    await this.lock.run(`start:${uuid}`, async () => {
      const c = await this.d.container(uuid);
      if (!c?.pid) return;
      for (const r of hot) {
        await this.mountInto(r.id, c.pid, r.attachment!.mount_point).catch((err: unknown) =>
          this.d.log.error({ volume_id: r.id, uuid, err }, 'could not mount a volume into its restarted container'),
        );
      }
    });
  }

  private async mountInto(id: string, pid: number, target: string): Promise<void> {
    const source = await this.d.devices.activate(id);
    await this.d.ns!.mount(pid, source, target).catch((err: unknown) => {
      this.d.log.error({ volume_id: id, err }, 'could not mount a volume into a running container');
      throw agentError('VOLUME_FAILED', `could not mount volume ${id} into its instance`, { volume_id: id });
    });
  }

  /** Mounts every volume on the host (after a restart of the host, before containers need them). */
  async restore(): Promise<void> {
    for (const r of this.d.records.all()) {
      await this.d.devices.activate(r.id).catch((err: unknown) => this.d.log.error({ volume_id: r.id, err }, 'could not mount a volume at start-up'));
    }
  }

  private async update(uuid: string, change: (r: VolumeRecord, a: Attachment) => VolumeRecord['attachment']): Promise<void> {
    await this.lock.run(ALL, async () => {
      for (const r of this.d.records.all()) {
        if (r.attachment?.instance_uuid !== uuid) continue;
        const next = change(r, r.attachment);
        if (JSON.stringify(next) !== JSON.stringify(r.attachment)) await this.d.records.save({ ...r, attachment: next });
      }
    });
  }

  private find(ref: string, projectId?: string): VolumeRecord {
    const byId = this.d.records.get(ref);
    const rec = byId ?? (projectId === undefined ? undefined : this.d.records.all().find((r) => r.project_id === projectId && r.name === ref));
    if (!rec || (projectId !== undefined && rec.project_id !== projectId)) throw notFound(ref);
    return rec;
  }

  private async view(r: VolumeRecord): Promise<Volume> {
    const a = r.attachment;
    return {
      id: r.id,
      name: r.name,
      project_id: r.project_id,
      size_gb: r.size_gb,
      status: a ? STATUS[a.state] : 'available',
      attachment: a ? { instance_uuid: a.instance_uuid, mount_point: a.mount_point, attached_at: a.attached_at } : null,
      created_at: r.created_at,
      usage: await this.d.devices.usage(r.id).catch(() => null),
    };
  }
}

function checked(v: unknown, re: RegExp, field: string, what: string): string {
  if (typeof v !== 'string' || !re.test(v)) throw invalidInput(`${field} must be ${what}`, { field });
  return v;
}

const notFound = (ref: string) => agentError('VOLUME_NOT_FOUND', `volume ${ref} not found`, { volume: ref });

const inUse = (r: VolumeRecord) =>
  agentError('VOLUME_IN_USE', `volume ${r.name} is attached to instance ${r.attachment!.instance_uuid}`, {
    volume_id: r.id,
    instance_uuid: r.attachment!.instance_uuid,
  });
