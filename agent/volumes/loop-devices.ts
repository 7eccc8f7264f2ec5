import { execFile } from 'node:child_process';
import { mkdir, open, readdir, readFile, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../common/log.js';
import { agentError } from '../errors.js';
import { GIB, type VolumeDevices } from './types.js';

/** Runs a host program; rejects with its stderr when it exits non-zero. */
export type RunCommand = (file: string, args: readonly string[]) => Promise<{ stdout: string }>;

const COMMAND_TIMEOUT_MS = 120_000;

export const runCommand: RunCommand = (file, args) =>
  new Promise((resolve, reject) => {
    execFile(file, args, { timeout: COMMAND_TIMEOUT_MS, maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${file} failed: ${String(stderr).trim() || err.message}`));
      else resolve({ stdout: String(stdout) });
    });
  });

/** Mount options of every volume: no device files and no set-uid programs take effect from a tenant's filesystem. */
export const VOLUME_MOUNT_OPTIONS = 'nodev,nosuid';

export interface LoopVolumeDevicesOptions {
  /** `[volumes] path`: one folder per volume (`disk.img`, `mnt/`). */
  root: string;
  log: Logger;
  run?: RunCommand;
  /** The host's mount table; default /proc/self/mountinfo. */
  mountinfo?: () => Promise<string>;
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

/** The mount points of a mountinfo table (its fifth field). */
export function mountPointsOf(mountinfo: string): Set<string> {
  const points = new Set<string>();
  for (const line of mountinfo.split('\n')) {
    const field = line.split(' ')[4];
    if (field) points.add(unescape(field));
  }
  return points;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * VolumeDevices over loop devices: `<root>/<id>/disk.img` is a sparse file of the volume's size
 * holding an ext4 filesystem mkfs made here (never an image a tenant supplied), mounted nodev,nosuid
 * through a loop device at `<root>/<id>/mnt`; containers bind `mnt/data`. The filesystem's size
 * is the volume's: a full volume is ENOSPC for the guest, never for the host.
 */
export class LoopVolumeDevices implements VolumeDevices {
  private readonly run: RunCommand;
  private readonly mountinfo: () => Promise<string>;

  constructor(private readonly o: LoopVolumeDevicesOptions) {
    this.run = o.run ?? runCommand;
    this.mountinfo = o.mountinfo ?? (() => readFile('/proc/self/mountinfo', 'utf8'));
  }

  private dir(id: string): string {
    // Ids are the agent's own uuids; anything else never reaches the host's paths.
    if (!UUID.test(id)) throw agentError('VOLUME_NOT_FOUND', `volume ${id} not found`, { volume_id: id });
    return join(this.o.root, id);
  }

  private paths(id: string): { dir: string; disk: string; mnt: string; data: string } {
    const dir = this.dir(id);
    return { dir, disk: join(dir, 'disk.img'), mnt: join(dir, 'mnt'), data: join(dir, 'mnt', 'data') };
  }

  private failed(id: string, what: string, err: unknown): never {
    this.o.log.error({ volume_id: id, err }, `could not ${what} a volume`);
    throw agentError('VOLUME_FAILED', `could not ${what} volume ${id}`, { volume_id: id });
  }

  async provision(id: string, sizeGb: number): Promise<void> {
    const p = this.paths(id);
    await mkdir(this.o.root, { recursive: true, mode: 0o700 });
    await mkdir(p.dir, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => this.failed(id, 'create', err));
    try {
      const f = await open(p.disk, 'wx', 0o600);
      try {
        await f.truncate(sizeGb * GIB);
      } finally {
        await f.close();
      }
      // No blocks reserved for root: the tenant gets the size it asked for.
      await this.run('mkfs.ext4', ['-q', '-F', '-m', '0', '-E', 'root_owner=0:0', p.disk]);
      await this.activate(id);
      await mkdir(p.data, { mode: 0o755 });
    } catch (err) {
      await this.destroy(id).catch(() => undefined);
      this.failed(id, 'create', err);
    }
  }

  async activate(id: string): Promise<string> {
    const p = this.paths(id);
    if (!(await exists(p.disk))) throw agentError('VOLUME_NOT_FOUND', `volume ${id} not found`, { volume_id: id });
    if (await this.mounted(p.mnt)) return p.data;
    await mkdir(p.mnt, { recursive: true, mode: 0o700 });
    try {
      // A loop device still holding the file (a container binds the filesystem while the host's
      // own mount is gone) is mounted again: one filesystem is never mounted through two devices.
      const held = await this.loopsOf(p.disk);
      if (held[0]) await this.run('mount', ['-t', 'ext4', '-o', VOLUME_MOUNT_OPTIONS, held[0], p.mnt]);
      else await this.run('mount', ['-t', 'ext4', '-o', `loop,${VOLUME_MOUNT_OPTIONS}`, p.disk, p.mnt]);
    } catch (err) {
      this.failed(id, 'mount', err);
    }
    return p.data;
  }

  async deactivate(id: string): Promise<void> {
    const p = this.paths(id);
    if (!(await this.mounted(p.mnt))) return;
    await this.run('umount', [p.mnt]).catch((err: unknown) => this.failed(id, 'unmount', err));
  }

  async destroy(id: string): Promise<void> {
    const p = this.paths(id);
    if (!(await exists(p.dir))) return;
    await this.deactivate(id);
    if (await exists(p.disk)) {
      for (const dev of await this.loopsOf(p.disk)) await this.run('losetup', ['-d', dev]).catch(() => undefined);
    }
    await rm(p.dir, { recursive: true, force: true });
  }

  async list(): Promise<string[]> {
    const names = await readdir(this.o.root).catch(() => [] as string[]);
    const ids: string[] = [];
    for (const n of names) if (UUID.test(n) && (await exists(join(this.o.root, n, 'disk.img')))) ids.push(n);
    return ids.sort();
  }

  async usage(id: string): Promise<{ size_bytes: number; used_bytes: number } | null> {
    const p = this.paths(id);
    if (!(await this.mounted(p.mnt))) return null;
    const s = await statfs(p.mnt);
    return { size_bytes: s.blocks * s.bsize, used_bytes: (s.blocks - s.bfree) * s.bsize };
  }

  private async mounted(mnt: string): Promise<boolean> {
    return mountPointsOf(await this.mountinfo()).has(mnt);
  }

  /** Loop devices backed by `file` (`losetup -j`). */
  private async loopsOf(file: string): Promise<string[]> {
    const { stdout } = await this.run('losetup', ['-n', '-O', 'NAME', '-j', file]);
    return stdout
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.startsWith('/dev/'));
  }
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
