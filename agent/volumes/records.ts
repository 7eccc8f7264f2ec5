import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { nodeFileOps, replaceFileDurably, type DurableFileOps } from '../../common/fs.js';
import type { Logger } from '../../common/log.js';
import type { VolumeAttachment } from '../client/volumes.js';

/** What the agent keeps of a volume; its status follows from the attachment (volumes.ts). */
export interface VolumeRecord {
  id: string;
  name: string;
  project_id: string;
  size_gb: number;
  created_at: string;
  /** `hot`: attached to an existing container, mounted into it after each start (not in its config). */
  attachment: (VolumeAttachment & { state: AttachmentState; hot?: boolean }) | null;
}

/**
 * `pending`: the instance's container does not bind the volume yet; `bound`: it does;
 * `detaching`: detached while a container still binds it.
 */
export type AttachmentState = 'pending' | 'bound' | 'detaching';

const RECORD = /^([0-9a-f-]{36})\.json$/;

/**
 * The volumes' records, one JSON file each beside the volumes' folders (`<root>/<id>.json`),
 * written to a temporary file, fsynced and renamed into place, the folder fsynced after the rename
 * and after a removal, so a restart (of the agent or of the host) reads every record whole and
 * none that was removed.
 */
export class VolumeRecords {
  private readonly byId = new Map<string, VolumeRecord>();

  private constructor(
    private readonly root: string,
    private readonly log: Logger,
    private readonly fs: DurableFileOps,
  ) {}

  /** Reads every record (once, when the agent starts). `fs`: the file operations of writes (tests). */
  static open(root: string, log: Logger, fs: DurableFileOps = nodeFileOps): VolumeRecords {
    const r = new VolumeRecords(root, log, fs);
    mkdirSync(root, { recursive: true, mode: 0o700 });
    for (const name of readdirSync(root)) {
      const m = RECORD.exec(name);
      if (!m) continue;
      try {
        const rec = JSON.parse(readFileSync(join(root, name), 'utf8')) as VolumeRecord;
        if (rec.id === m[1]) r.byId.set(rec.id, rec);
      } catch (err) {
        log.error({ file: name, err }, 'unreadable volume record skipped');
      }
    }
    return r;
  }

  all(): VolumeRecord[] {
    return [...this.byId.values()].sort((a, b) => a.created_at.localeCompare(b.created_at) || a.id.localeCompare(b.id));
  }

  get(id: string): VolumeRecord | undefined {
    return this.byId.get(id);
  }

  async save(rec: VolumeRecord): Promise<void> {
    await replaceFileDurably(join(this.root, `${rec.id}.json`), JSON.stringify(rec), 0o600, this.fs);
    this.byId.set(rec.id, rec);
  }

  async remove(id: string): Promise<void> {
    await rm(join(this.root, `${id}.json`), { force: true });
    await this.fs.fsync(this.root);
    this.byId.delete(id);
    this.log.debug({ volume_id: id }, 'volume record removed');
  }
}
