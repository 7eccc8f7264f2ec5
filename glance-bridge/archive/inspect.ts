import { createHash } from 'node:crypto';
import { extract as tarExtract, type Extract } from 'tar-stream';
import { invalidInput } from '../../common/errors.js';
import { drainedOrClosed } from '../../common/streams.js';

/**
 * Reads a `docker save` archive as it streams past (an upload is never buffered whole) and finds
 * the image id a host will get from `docker load`: the sha256 of the config file that
 * manifest.json names. The config is hashed from its bytes rather than trusted from its file
 * name. `docker save` writes manifest.json last, so every small candidate file (top-level
 * `*.json`, or `blobs/sha256/*` in the OCI layout Docker 25+ writes) is hashed on the way and
 * looked up at the end; layer bodies are drained unread.
 */

const CANDIDATE_LIMIT = 16 * 1024 * 1024;
const MANIFEST_LIMIT = 1024 * 1024;
/** Where `docker load` takes image names from (moby image/tar/load.go, containerd's archive import). */
const NAMING_FILES = new Set(['manifest.json', 'index.json', 'repositories']);
const NAME_ANNOTATIONS = ['org.opencontainers.image.ref.name', 'io.containerd.image.name'];

export class DockerArchiveInspector {
  private readonly extract: Extract = tarExtract();
  private readonly digests = new Map<string, string>();
  private manifest: Buffer | null = null;
  private index: Buffer | null = null;
  private repositories = false;
  private readonly consumed: Promise<void>;
  private failure: Error | null = null;

  constructor() {
    this.consumed = this.consume();
    this.consumed.catch((err: unknown) => {
      this.failure = err as Error;
    });
  }

  /** Feeds one chunk; resolves when the parser can take more. */
  async write(chunk: Buffer): Promise<void> {
    if (this.failure) throw notAnArchive(this.failure);
    if (!this.extract.write(chunk)) await drainedOrClosed(this.extract);
    if (this.failure) throw notAnArchive(this.failure);
  }

  /** Ends the input; returns `sha256:<hex>` of the config manifest.json names. */
  async finish(): Promise<string> {
    (this.extract as unknown as { end(): void }).end();
    try {
      await this.consumed;
    } catch (err) {
      throw notAnArchive(err as Error);
    }
    if (!this.manifest) throw invalidInput('docker archive has no manifest.json (expected the output of docker save)');
    let doc: unknown;
    try {
      doc = JSON.parse(this.manifest.toString('utf8'));
    } catch {
      doc = null;
    }
    const entries = Array.isArray(doc) ? (doc as Record<string, unknown>[]) : [];
    if (entries.length !== 1 || typeof entries[0]?.Config !== 'string') {
      throw invalidInput(`docker archive manifest.json must describe exactly one image (it has ${entries.length})`);
    }
    refuseNames(entries, this.index, this.repositories);
    const configName = normalise(entries[0]!.Config as string);
    const digest = this.digests.get(configName);
    if (!digest) throw invalidInput(`docker archive has no config file ${configName}`, { config: configName });
    return digest;
  }

  /** Stops parsing (the upload failed elsewhere). */
  destroy(): void {
    this.extract.destroy();
  }

  private async consume(): Promise<void> {
    for await (const entry of this.extract) {
      const name = normalise(entry.header.name);
      const size = entry.header.size ?? 0;
      const isManifest = name === 'manifest.json';
      const isIndex = name === 'index.json';
      if (NAMING_FILES.has(name) && entry.header.type !== 'file') throw invalidInput(`docker archive's ${name} is a ${entry.header.type}, not a file`);
      if (name === 'repositories') this.repositories = true;
      if (isIndex && size > MANIFEST_LIMIT) throw invalidInput(`index.json over ${MANIFEST_LIMIT} bytes`);
      const isCandidate = entry.header.type === 'file' && size <= CANDIDATE_LIMIT && (/^[^/]+\.json$/.test(name) || /^blobs\/sha256\/[0-9a-f]{64}$/.test(name));
      if (isManifest && size > MANIFEST_LIMIT) throw invalidInput(`manifest.json over ${MANIFEST_LIMIT} bytes`);
      const hash = isCandidate ? createHash('sha256') : null;
      const kept: Buffer[] = [];
      for await (const chunk of entry) {
        hash?.update(chunk as Buffer);
        if (isManifest || isIndex) kept.push(chunk as Buffer);
      }
      if (hash) this.digests.set(name, `sha256:${hash.digest('hex')}`);
      if (isManifest) this.manifest = Buffer.concat(kept);
      if (isIndex) this.index = Buffer.concat(kept);
    }
  }
}

function normalise(name: string): string {
  return name.replace(/^(\.\/)+/, '');
}

/**
 * Refuses an archive that names images: `docker load` on a host would point those names (any
 * tag, `busybox:latest` or `registry:2` included) at this content. Hosts address images by id; an
 * image saved by id (`docker save <id>`, as Berth's snapshots are) names none. (Hosts' agents
 * remove names from whatever archive they load too; this keeps stored archives as documented.)
 */
function refuseNames(entries: Record<string, unknown>[], index: Buffer | null, repositories: boolean): void {
  const how = 'save the image by id (docker save <image id>) rather than by name';
  // Go matches JSON field names case-insensitively: `repotags` counts as RepoTags.
  const tags = entries.flatMap((e) =>
    Object.entries(e)
      .filter(([k]) => k.toLowerCase() === 'repotags')
      .map(([, v]) => v),
  );
  if (tags.some((t) => t !== null && !(Array.isArray(t) && t.length === 0)))
    throw invalidInput(`docker archive manifest.json names the image (RepoTags): ${how}`);
  if (repositories) throw invalidInput(`docker archive has a repositories file naming images: ${how}`);
  if (!index) return;
  let doc: unknown;
  try {
    doc = JSON.parse(index.toString('utf8'));
  } catch {
    throw invalidInput('docker archive index.json is not JSON');
  }
  const text = JSON.stringify(doc);
  if (NAME_ANNOTATIONS.some((a) => text.includes(JSON.stringify(a))))
    throw invalidInput(`docker archive index.json names the image (${NAME_ANNOTATIONS.join(', ')}): ${how}`);
}

function notAnArchive(err: Error): Error {
  if ('code' in err && err.code === 'INVALID_INPUT') return err;
  return invalidInput(`image data is not a docker archive (tar): ${err.message}`);
}
