import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { extract as tarExtract, pack as tarPack, type Extract, type Header, type Pack } from 'tar-stream';
import { drainedOrClosed } from '../common/streams.js';
import { agentError } from './errors.js';

/**
 * Trims a `docker save` archive of an instance's commit for a host that already has the image the
 * instance was created from (the destination of a move checked that in its prep_resize): the
 * layer bodies of that base image are left out, everything else (configs, manifest, the layer
 * the commit added) streams through as it was. `docker load` takes a layer it already has from
 * its own store (moby image/tar/load.go looks a layer's chain up before it opens its file), so
 * the trimmed archive loads to the same image id on such a host and on no other.
 *
 * Which entries are the base's layers, decided as they stream past (layer bodies are never held):
 * - OCI layout (Docker 25+): `blobs/sha256/<hex>` with `sha256:<hex>` one of the base's diff ids
 *   (layers are saved uncompressed, so their digest is their diff id);
 * - the older layout: `<dir>/layer.tar` whose `<dir>/json` (written just before it) has no
 *   `config`: only the image's own top layer carries the image's config there, and a commit adds
 *   at most one layer on top of its base (none when the guest changed nothing: then the top one
 *   is the base's too, and goes as well). `trimmable` says whether an image's layers are such.
 * At the end the choice is checked against manifest.json and the image config: the layers left
 * out must be exactly the first ones of the image, and those must be the base's diff ids.
 * Otherwise the stream fails (the upload with it): a wrong trim never becomes an image.
 */

export interface TrimResult {
  /** Layer files left out, and their bytes. */
  omitted: number;
  omittedBytes: number;
  /** Layer files sent. */
  kept: number;
}

const SMALL = 1024 * 1024;
const HEX = /^blobs\/sha256\/([0-9a-f]{64})$/;

/** Whether an image's layers (diff ids) are its base's and at most one more: what trimmedArchive can trim. */
export function trimmable(imageDiffIds: readonly string[], baseDiffIds: readonly string[]): boolean {
  const extra = imageDiffIds.length - baseDiffIds.length;
  return baseDiffIds.length > 0 && (extra === 0 || extra === 1) && baseDiffIds.every((d, i) => imageDiffIds[i] === d);
}

export function trimmedArchive(
  source: NodeJS.ReadableStream,
  baseDiffIds: readonly string[],
  imageDiffIds: readonly string[],
): { stream: Readable; result: Promise<TrimResult> } {
  const topIsBase = imageDiffIds.length === baseDiffIds.length;
  const extract = tarExtract();
  const pack = tarPack();
  const input = source instanceof Readable ? source : new Readable().wrap(source);
  input.on('error', (err) => extract.destroy(err));
  input.pipe(extract as unknown as NodeJS.WritableStream);
  const result = trim(extract, pack, baseDiffIds, topIsBase).then(
    (r) => {
      pack.finalize();
      return r;
    },
    (err: unknown) => {
      input.unpipe(extract as unknown as NodeJS.WritableStream);
      input.destroy();
      extract.destroy();
      pack.destroy(err as Error);
      throw err;
    },
  );
  result.catch(() => undefined);
  return { stream: Readable.from(pack, { objectMode: false }), result };
}

async function trim(extract: Extract, pack: Pack, base: readonly string[], topIsBase: boolean): Promise<TrimResult> {
  const baseSet = new Set(base);
  const small = new Map<string, Buffer>();
  const omitted = new Set<string>();
  const seenLayers = new Set<string>();
  let omittedBytes = 0;
  for await (const entry of extract) {
    const h = entry.header;
    const name = posix
      .normalize(h.name)
      .replace(/^(\.\/)+/, '')
      .replace(/\/+$/, '');
    const size = h.size ?? 0;
    const oci = HEX.exec(name);
    const isLayerTar = h.type === 'file' && name.endsWith('/layer.tar');
    if (isLayerTar) seenLayers.add(name);
    const drop =
      h.type === 'file' &&
      ((oci !== null && baseSet.has(`sha256:${oci[1]!}`)) || (isLayerTar && (topIsBase || !hasConfig(small.get(`${posix.dirname(name)}/json`)))));
    if (drop) {
      omitted.add(name);
      omittedBytes += size;
      entry.resume();
      await new Promise<void>((resolve) => entry.on('end', resolve));
      continue;
    }
    if (h.type === 'file' && size <= SMALL && (name.endsWith('json') || oci !== null)) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      small.set(name, body);
      await write(pack, h, body);
      continue;
    }
    await write(pack, h, h.type === 'file' ? entry : null);
    if (h.type !== 'file') entry.resume();
  }
  const layers = check(small, omitted, base);
  return { omitted: omitted.size, omittedBytes, kept: layers - omitted.size };
}

function hasConfig(json: Buffer | undefined): boolean {
  if (!json) return true; // nothing known of it: keep it
  try {
    const doc = JSON.parse(json.toString('utf8')) as Record<string, unknown>;
    return doc.config !== undefined && doc.config !== null;
  } catch {
    return true;
  }
}

/** The trim left out the image's first layers, and those are the base's; returns the image's layer count. */
function check(small: Map<string, Buffer>, omitted: Set<string>, base: readonly string[]): number {
  const manifest = parse(small.get('manifest.json'), 'manifest.json') as Array<{ Config?: string; Layers?: string[] }>;
  const item = Array.isArray(manifest) && manifest.length === 1 ? manifest[0]! : null;
  if (!item || typeof item.Config !== 'string' || !Array.isArray(item.Layers)) throw bad('manifest.json does not describe one image');
  const config = parse(small.get(posix.normalize(item.Config)), item.Config) as { rootfs?: { diff_ids?: string[] } };
  const diffIds = config.rootfs?.diff_ids ?? [];
  const layers = item.Layers.map((l) => posix.normalize(l));
  if (diffIds.length !== layers.length) throw bad('the image config and manifest.json disagree on its layers');
  const n = layers.filter((l) => omitted.has(l)).length;
  if (n !== omitted.size) throw bad('a file left out is not a layer of the image');
  for (let i = 0; i < layers.length; i++) {
    const left = omitted.has(layers[i]!);
    if (left !== i < base.length) throw bad(`layer ${i} of the image was ${left ? 'left out' : 'kept'}`);
    if (left && diffIds[i] !== base[i]) throw bad(`layer ${i} left out is not the base image's layer ${i}`);
  }
  return new Set(layers).size;
}

function parse(body: Buffer | undefined, name: string): unknown {
  if (!body) throw bad(`the archive has no ${name}`);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw bad(`${name} is not JSON`);
  }
}

function bad(why: string) {
  return agentError('IMAGE_UPLOAD_FAILED', `cannot leave the base image's layers out of the instance's image: ${why}`);
}

async function write(pack: Pack, header: Header, body: Buffer | AsyncIterable<unknown> | null): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error | null): void => (err ? reject(err) : resolve());
    if (body === null) return void pack.entry(header, done);
    if (Buffer.isBuffer(body)) return void pack.entry(header, body, done);
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
