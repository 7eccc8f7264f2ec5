import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
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
 * written to a temporary file and renamed into place, so a restart reads every record whole.
 */
export class VolumeRecords {
  private readonly byId = new Map<string, VolumeRecord>();

  private constructor(
    private readonly root: string,
    private readonly log: Logger,
  ) {}

  /** Reads every record (once, when the agent starts). */
  static open(root: string, log: Logger): VolumeRecords {
    const r = new VolumeRecords(root, log);
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
    const file = join(this.root, `${rec.id}.json`);
    const tmp = `${file}.tmp`;
    await writeFile(tmp, JSON.stringify(rec), { mode: 0o600 });
    await rename(tmp, file);
    this.byId.set(rec.id, rec);
  }

  async remove(id: string): Promise<void> {
    await rm(join(this.root, `${id}.json`), { force: true });
    this.byId.delete(id);
    this.log.debug({ volume_id: id }, 'volume record removed');
  }
}
