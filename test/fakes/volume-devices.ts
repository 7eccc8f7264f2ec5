import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { agentError } from '../../agent/errors.js';
import { GIB, type VolumeDevices } from '../../agent/volumes/types.js';

const exists = (p: string): Promise<boolean> =>
  stat(p).then(
    () => true,
    () => false,
  );

/**
 * VolumeDevices over plain folders: a volume is `<root>/<id>/`, its data kept in `stored/` while
 * "unmounted" and renamed to `data/` while "mounted", so the bind source exists only while the
 * volume is active, as with the real one. No size is enforced. It passes
 * test/conformance/volume-devices.ts with LoopVolumeDevices.
 */
export class FakeVolumeDevices implements VolumeDevices {
  private readonly sizes = new Map<string, number>();
  /** Calls by name, for tests that count them. */
  readonly calls: string[] = [];

  constructor(private readonly root: string) {}

  async provision(id: string, sizeGb: number): Promise<void> {
    this.calls.push('provision');
    const dir = join(this.root, id);
    if (await exists(dir)) throw agentError('VOLUME_FAILED', `could not create volume ${id}`, { volume_id: id });
    await mkdir(join(dir, 'stored'), { recursive: true });
    this.sizes.set(id, sizeGb);
    await this.activate(id);
  }

  async activate(id: string): Promise<string> {
    this.calls.push('activate');
    const dir = join(this.root, id);
    if (!(await exists(dir))) throw agentError('VOLUME_NOT_FOUND', `volume ${id} not found`, { volume_id: id });
    if (await exists(join(dir, 'stored'))) await rename(join(dir, 'stored'), join(dir, 'data'));
    return join(dir, 'data');
  }

  async deactivate(id: string): Promise<void> {
    this.calls.push('deactivate');
    const dir = join(this.root, id);
    if (await exists(join(dir, 'data'))) await rename(join(dir, 'data'), join(dir, 'stored'));
  }

  async destroy(id: string): Promise<void> {
    this.calls.push('destroy');
    await rm(join(this.root, id), { recursive: true, force: true });
    this.sizes.delete(id);
  }

  async list(): Promise<string[]> {
    return (await readdir(this.root).catch(() => [] as string[])).sort();
  }

  async usage(id: string): Promise<{ size_bytes: number; used_bytes: number } | null> {
    if (!(await exists(join(this.root, id, 'data')))) return null;
    return { size_bytes: (this.sizes.get(id) ?? 1) * GIB, used_bytes: 0 };
  }
}
