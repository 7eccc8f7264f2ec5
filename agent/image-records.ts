import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { replaceFileDurably } from '../common/fs.js';
import { dirname, join } from 'node:path';

/** What the agent remembers about one image it loaded into the engine. */
export interface LoadedImage {
  /** Glance ids whose content this is (one content can back several Glance images). */
  glanceIds: string[];
  /**
   * Those of `glanceIds` whose own content the engine reported as this image when the agent
   * fetched it (records written before that was checked lack some, and are checked again).
   */
  verified: string[];
  loadedAt: number;
  /** Last time, in ms since the epoch, a create used it or a clean-up pass found a container using it. */
  lastUsedAt: number;
}

/**
 * The images this agent loaded, by engine image id, in `$state_path/agent-images.json`. Only
 * these are ever removed by the clean-up: an image somebody else put in the engine (pulled by
 * hand, loaded by another host sharing the engine, present before Berth) is never listed here.
 * Written with a rename, so a crash leaves the old file or the new one.
 */
export class ImageRecords {
  private readonly records: Map<string, LoadedImage>;
  private writing: Promise<void> = Promise.resolve();

  constructor(private readonly file: string) {
    this.records = readRecords(file);
  }

  static at(statePath: string): ImageRecords {
    return new ImageRecords(join(statePath, 'agent-images.json'));
  }

  get(imageId: string): LoadedImage | undefined {
    return this.records.get(imageId);
  }
  entries(): [string, LoadedImage][] {
    return [...this.records];
  }

  /** Records an image this agent has just loaded for `glanceId`, and verified to be that image's content. */
  loaded(imageId: string, glanceId: string, now = Date.now()): Promise<void> {
    const r = this.records.get(imageId);
    if (r && !r.glanceIds.includes(glanceId)) r.glanceIds.push(glanceId);
    if (r && !r.verified.includes(glanceId)) r.verified.push(glanceId);
    this.records.set(imageId, r ? { ...r, lastUsedAt: now } : { glanceIds: [glanceId], verified: [glanceId], loadedAt: now, lastUsedAt: now });
    return this.save();
  }

  /** Whether the agent verified that Glance image `glanceId`'s content is engine image `imageId`. */
  verifiedFor(imageId: string, glanceId: string): boolean {
    return this.records.get(imageId)?.verified.includes(glanceId) ?? false;
  }

  /** Marks an image as used now; kept in memory until the next save. */
  used(imageId: string, now = Date.now()): void {
    const r = this.records.get(imageId);
    if (r) r.lastUsedAt = now;
  }

  forget(imageId: string): Promise<void> {
    this.records.delete(imageId);
    return this.save();
  }

  /** Writes are queued so that two never interleave. */
  save(): Promise<void> {
    const body = `${JSON.stringify(Object.fromEntries(this.records), null, 1)}\n`;
    this.writing = this.writing
      .catch(() => undefined)
      .then(async () => {
        await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
        await replaceFileDurably(this.file, body);
      });
    return this.writing;
  }
}

/** A missing or unreadable file is an empty record: the worst outcome is an image kept too long. */
function readRecords(file: string): Map<string, LoadedImage> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return new Map();
  }
  const out = new Map<string, LoadedImage>();
  if (!raw || typeof raw !== 'object') return out;
  for (const [id, v] of Object.entries(raw as Record<string, Partial<LoadedImage>>)) {
    if (!/^sha256:[0-9a-f]{64}$/.test(id) || !v || !Array.isArray(v.glanceIds)) continue;
    const glanceIds = v.glanceIds.filter((g): g is string => typeof g === 'string');
    const verified = Array.isArray(v.verified) ? v.verified.filter((g): g is string => typeof g === 'string' && glanceIds.includes(g)) : [];
    out.set(id, { glanceIds, verified, loadedAt: Number(v.loadedAt) || 0, lastUsedAt: Number(v.lastUsedAt) || 0 });
  }
  return out;
}
