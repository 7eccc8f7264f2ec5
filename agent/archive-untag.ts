import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { extract as tarExtract, pack as tarPack, type Extract, type Header, type Pack } from 'tar-stream';
import type { BerthError } from '../common/errors.js';
import { drainedOrClosed } from '../common/streams.js';
import { agentError } from './errors.js';

/**
 * Rewrites an image archive on its way to `docker load` so that it names no image: whatever a
 * tenant put in it, loading it can only add an image under its id, never move a tag of the host
 * (`registry:2`, `busybox:latest`, another tenant's image) onto the tenant's content.
 *
 * What `docker load` takes names from (moby image/tar/load.go, containerd's archive import):
 * - `manifest.json`: each item's `RepoTags`. The items are written back with `RepoTags: []` and
 *   only the fields moby reads (Go matches JSON field names case-insensitively, so a `repotags`
 *   key would count too);
 * - `index.json` (OCI layout, read by the containerd image store): the descriptors'
 *   `org.opencontainers.image.ref.name` and `io.containerd.image.name` annotations. Written back
 *   without any annotations;
 * - `repositories` (the legacy format, read when there is no manifest.json): dropped.
 *
 * The archive is parsed and written again entry by entry (layers stream through unread), with
 * each entry's name normalised, so the engine reads exactly the names checked here. Refused, as
 * the engine would otherwise read a file this rewrite did not see: one of those three names as
 * anything but a regular file (a link to a tagged copy), and any entry whose path goes through a
 * link the archive made (`d -> .` then `d/manifest.json`).
 */

/** What pack.entry takes. */
type EntryHeader = Partial<Header> & Pick<Header, 'name'>;

const MANIFEST_LIMIT = 1024 * 1024;
const NAMED_FILES = new Set(['manifest.json', 'index.json', 'repositories']);
const PASSED_TYPES = new Set(['file', 'directory', 'symlink', 'link']);

export function untaggedArchive(source: NodeJS.ReadableStream): Readable {
  const extract = tarExtract();
  const pack = tarPack();
  const input = source instanceof Readable ? source : new Readable().wrap(source);
  input.on('error', (err) => extract.destroy(err));
  input.pipe(extract as unknown as NodeJS.WritableStream);
  rewrite(extract, pack).then(
    () => pack.finalize(),
    (err: unknown) => {
      input.unpipe(extract as unknown as NodeJS.WritableStream);
      input.destroy();
      extract.destroy();
      pack.destroy(err as Error);
    },
  );
  return Readable.from(pack, { objectMode: false });
}

async function rewrite(extract: Extract, pack: Pack): Promise<void> {
  const links = new Set<string>();
  for await (const entry of extract) {
    const h = entry.header;
    const name = normalise(h.name);
    if (name === '' && h.type === 'directory') {
      entry.resume();
      continue;
    }
    if (name === '') throw refused(`entry ${JSON.stringify(h.name)} names the archive's root`);
    if (!PASSED_TYPES.has(h.type ?? 'file')) throw refused(`entry ${JSON.stringify(name)} is a ${String(h.type)}`);
    for (let dir = posix.dirname(name); dir !== '.'; dir = posix.dirname(dir)) {
      if (links.has(dir)) throw refused(`entry ${JSON.stringify(name)} goes through the link ${JSON.stringify(dir)}`);
    }
    if (h.type === 'symlink' || h.type === 'link') links.add(name);
    if (NAMED_FILES.has(name) && h.type !== 'file') throw refused(`${name} is a ${String(h.type)}, not a file`);

    if (name === 'repositories') {
      entry.resume();
      continue;
    }
    if (name === 'manifest.json' || name === 'index.json') {
      if ((h.size ?? 0) > MANIFEST_LIMIT) throw refused(`${name} is over ${MANIFEST_LIMIT} bytes`);
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      const body = Buffer.from(JSON.stringify(name === 'manifest.json' ? untagManifest(parse(name, chunks)) : untagIndex(parse(name, chunks))));
      await write(pack, { name, type: 'file', mode: 0o644, mtime: h.mtime ?? new Date(0), size: body.length }, body);
      continue;
    }
    // Only what locates and describes the entry is kept: pax records (a size, a path) are not
    // passed on, so nothing the engine reads can disagree with what was checked here.
    const header: EntryHeader = {
      name: h.type === 'directory' ? `${name}/` : name,
      type: h.type ?? 'file',
      mode: h.mode ?? 0o644,
      mtime: h.mtime ?? new Date(0),
      size: h.type === 'file' ? (h.size ?? 0) : 0,
      uid: 0,
      gid: 0,
      ...(h.type === 'symlink' || h.type === 'link' ? { linkname: h.type === 'link' ? normalise(h.linkname ?? '') : (h.linkname ?? '') } : {}),
    };
    await write(pack, header, h.type === 'file' ? entry : null);
    if (h.type !== 'file') entry.resume();
  }
}

/** Writes one entry: literal bytes, the body of an entry being read, or nothing. */
async function write(pack: Pack, header: EntryHeader, body: Buffer | AsyncIterable<unknown> | null): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error | null): void => {
      if (err) reject(err);
      else resolve();
    };
    if (body === null) {
      pack.entry(header, done);
      return;
    }
    if (Buffer.isBuffer(body)) {
      pack.entry(header, body, done);
      return;
    }
    const sink = pack.entry(header, done);
    void (async () => {
      for await (const chunk of body) {
        if (!sink.write(chunk as Buffer)) await drainedOrClosed(sink);
      }
      (sink as unknown as { end(): void }).end();
    })().catch((err: unknown) => {
      sink.destroy(err as Error);
      reject(err as Error);
    });
  });
}

function parse(name: string, chunks: Buffer[]): unknown {
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw refused(`${name} is not JSON`);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** moby's manifestItem without its tags: Config, Layers, Parent, LayerSources, and `RepoTags: []`. */
function untagManifest(doc: unknown): unknown {
  if (!Array.isArray(doc)) throw refused('manifest.json is not a list of images');
  return doc.map((item: unknown) => {
    if (!isObject(item)) throw refused('manifest.json lists something that is not an image');
    const out: Record<string, unknown> = { Config: item.Config, RepoTags: [], Layers: item.Layers };
    if (item.Parent !== undefined) out.Parent = item.Parent;
    if (item.LayerSources !== undefined) out.LayerSources = item.LayerSources;
    return out;
  });
}

/** An OCI index with its descriptors' annotations (where image names live) left out. */
function untagIndex(doc: unknown): unknown {
  if (!isObject(doc) || !Array.isArray(doc.manifests)) throw refused('index.json is not an OCI image index');
  const out: Record<string, unknown> = { schemaVersion: doc.schemaVersion };
  if (doc.mediaType !== undefined) out.mediaType = doc.mediaType;
  out.manifests = doc.manifests.map((d: unknown) => {
    if (!isObject(d)) throw refused('index.json lists something that is not a descriptor');
    const kept: Record<string, unknown> = {};
    for (const key of ['mediaType', 'digest', 'size', 'platform', 'urls', 'artifactType']) if (d[key] !== undefined) kept[key] = d[key];
    return kept;
  });
  return out;
}

/** The name an entry has inside the archive, as the engine resolves it ('' for the root): `..` cannot leave it. */
function normalise(raw: string): string {
  return posix.normalize(`/${raw}`).slice(1).replace(/\/+$/, '');
}

function refused(why: string): BerthError {
  return agentError('IMAGE_FETCH_FAILED', `image archive refused: ${why}`);
}
