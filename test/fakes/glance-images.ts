import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { BerthError } from '../../common/errors.js';
import type { GlanceImage, ImageService, ImportProgress } from '../../glance-bridge/client/types.js';
import { imageError } from '../../glance-bridge/client/errors.js';

/** Query keys of GET /v2/images that are not attribute filters. */
const CONTROL = new Set(['limit', 'marker', 'sort', 'sort_key', 'sort_dir', 'size_min', 'size_max', 'member_status', 'os_hidden']);

const notFound = (id: string): BerthError => imageError('IMAGE_NOT_FOUND', `image ${id} not found`, { image_id: id });

/** What the fake imports for a `docker://` reference (see `importable`). */
export interface FakeImportable {
  digest: string;
  docker_image_id: string;
  file: Buffer;
}

/**
 * An in-memory ImageService holding Glance image records and, for each, a function producing its
 * `file`. It keeps the image service's rules that test/conformance/image-service.ts pins: an
 * upload moves a queued image to active (once), list filters, IMAGE_NOT_FOUND for a missing
 * image and IMAGE_NO_DATA for one without data, members of shared images only, formats of queued
 * images only. Counts downloads so tests can see a shared fetch.
 */
export class FakeImageService implements ImageService {
  readonly records = new Map<string, GlanceImage>();
  private readonly files = new Map<string, () => Promise<NodeJS.ReadableStream>>();
  /** Members by image id, then by project (what POST /v2/images/{id}/members made). */
  readonly members = new Map<string, Map<string, { status: string }>>();
  /** The `docker://` references importImage can fetch; any other is MANIFEST_NOT_FOUND. */
  readonly importable = new Map<string, FakeImportable>();
  /** The remote Glance exportImage copies into; unset, an export is EXPORT_NOT_CONFIGURED. */
  exportTarget: ImageService | null = null;
  downloads = 0;
  uploads = 0;
  /** Holds each upload until this promise settles (to observe a snapshot mid-upload). */
  uploadGate: Promise<void> = Promise.resolve();
  /** Resolves each download only once this promise settles (to hold a fetch in flight). */
  gate: Promise<void> = Promise.resolve();

  add(id: string, props: Partial<GlanceImage>, file?: Buffer | (() => Promise<NodeJS.ReadableStream>)): GlanceImage {
    const now = new Date().toISOString();
    const image: GlanceImage = {
      id,
      name: `image-${id.slice(0, 8)}`,
      status: 'active',
      visibility: 'public',
      container_format: 'docker',
      disk_format: 'raw',
      size: null,
      checksum: null,
      os_hash_algo: null,
      os_hash_value: null,
      owner: null,
      min_ram: 0,
      min_disk: 0,
      protected: false,
      tags: [],
      created_at: now,
      updated_at: now,
      self: `/v2/images/${id}`,
      file: `/v2/images/${id}/file`,
      schema: '/v2/schemas/image',
      ...props,
    };
    this.records.set(id, image);
    if (file) this.files.set(id, Buffer.isBuffer(file) ? async () => Readable.from([file]) : file);
    return image;
  }

  /** Makes project `memberId` a member of image `id` (Glance's owner-side members call). */
  addMember(id: string, memberId: string, status = 'pending'): void {
    let m = this.members.get(id);
    if (!m) this.members.set(id, (m = new Map()));
    m.set(memberId, { status });
  }

  private require(id: string): GlanceImage {
    const image = this.records.get(id);
    if (!image) throw notFound(id);
    return image;
  }

  async getImage(id: string): Promise<GlanceImage | null> {
    return this.records.get(id) ?? null;
  }

  /** Glance's filters: core attributes and custom properties by equality, `tag` by membership, `visibility=all` for none. */
  async listImages(filters: Record<string, string> = {}): Promise<GlanceImage[]> {
    const tests = Object.entries(filters).filter(([k, v]) => !CONTROL.has(k) && !(k === 'visibility' && v === 'all'));
    return [...this.records.values()].filter((image) =>
      tests.every(([k, v]) => (k === 'tag' ? image.tags.includes(v) : image[k] !== undefined && image[k] !== null && String(image[k]) === v)),
    );
  }

  /** Glance's members call: null unless the image is shared and `memberId` is its member. */
  async getMember(id: string, memberId: string): Promise<{ status: string } | null> {
    const image = this.records.get(id);
    if (!image || image.visibility !== 'shared') return null;
    const m = this.members.get(id)?.get(memberId);
    return m ? { ...m } : null;
  }

  async downloadImage(id: string): Promise<NodeJS.ReadableStream> {
    this.downloads++;
    await this.gate;
    const image = this.require(id);
    if (image.status === 'deactivated') throw imageError('IMAGE_STATE_FORBIDDEN', `image ${id} is deactivated`, { image_id: id });
    const file = this.files.get(id);
    if (image.status !== 'active' || !file) throw imageError('IMAGE_NO_DATA', `image ${id} has no data yet`, { image_id: id });
    return file();
  }

  /** Imports a reference of `importable` into a new active image; any other is MANIFEST_NOT_FOUND, as the registry answers. */
  async importImage(source: string, opts: { name?: string; onProgress?: (p: ImportProgress) => void } = {}): Promise<GlanceImage> {
    const found = this.importable.get(source);
    if (!found) throw imageError('MANIFEST_NOT_FOUND', `${source} not found`, { reference: source });
    const reference = source.replace(/^docker:\/\//, '');
    const image = this.add(
      randomUUID(),
      {
        name: opts.name ?? reference,
        visibility: 'shared',
        docker_image: reference,
        docker_digest: found.digest,
        docker_image_id: found.docker_image_id,
        ...hashesOf(found.file),
      },
      found.file,
    );
    opts.onProgress?.({ image_id: image.id, status: 'active', bytes_done: found.file.length, bytes_total: found.file.length });
    return { ...image };
  }

  /** Like Glance: only a queued image takes data; it becomes active with the bytes as its file. */
  async uploadImage(id: string, data: NodeJS.ReadableStream): Promise<GlanceImage> {
    this.uploads++;
    const image = this.require(id);
    if (image.status !== 'queued') {
      throw imageError('IMAGE_CONFLICT', `image ${id} is ${image.status}; data can only be uploaded to a queued image`, { image_id: id, status: image.status });
    }
    image.status = 'saving';
    const chunks: Buffer[] = [];
    try {
      for await (const c of data) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
      await this.uploadGate;
    } catch (err) {
      image.status = 'killed';
      throw err;
    }
    const bytes = Buffer.concat(chunks);
    Object.assign(image, { status: 'active', ...hashesOf(bytes), updated_at: new Date().toISOString() });
    this.files.set(id, async () => Readable.from([bytes]));
    return { ...image };
  }

  /** Glance's default visibility for a new image is `shared`. */
  async createImage(props: { name: string; container_format: string; disk_format: string } & Record<string, unknown>): Promise<GlanceImage> {
    return { ...this.add(randomUUID(), { visibility: 'shared', ...props, status: 'queued' } as Partial<GlanceImage>) };
  }

  /** Copies an active image into `exportTarget`, as the image service's export does. */
  async exportImage(id: string, opts: { visibility?: GlanceImage['visibility']; name?: string } = {}): Promise<GlanceImage> {
    const target = this.exportTarget;
    if (!target) throw imageError('EXPORT_NOT_CONFIGURED', 'no remote Glance to export to', { image_id: id });
    const local = this.require(id);
    const remote = await target.createImage({
      name: opts.name ?? local.name ?? id,
      container_format: 'docker',
      disk_format: 'raw',
      visibility: opts.visibility ?? 'private',
    });
    return target.uploadImage(remote.id, await this.downloadImage(id), local.size ?? undefined);
  }

  async setProperties(id: string, properties: Record<string, string>): Promise<GlanceImage> {
    const image = this.require(id);
    Object.assign(image, properties, { updated_at: new Date().toISOString() });
    return { ...image };
  }

  /** Glance replaces the formats of a queued image only. */
  async setFormats(id: string, formats: { container_format: string; disk_format: string }): Promise<GlanceImage> {
    const image = this.require(id);
    if (image.status !== 'queued') {
      throw imageError('ATTRIBUTE_FORBIDDEN', 'Attribute container_format can be only replaced for a queued image.', { attribute: 'container_format' });
    }
    Object.assign(image, formats, { updated_at: new Date().toISOString() });
    return { ...image };
  }

  async deleteImage(id: string): Promise<void> {
    this.records.delete(id);
    this.files.delete(id);
    this.members.delete(id);
  }
}

function hashesOf(bytes: Buffer): Pick<GlanceImage, 'size' | 'checksum' | 'os_hash_algo' | 'os_hash_value'> {
  return {
    size: bytes.length,
    checksum: createHash('md5').update(bytes).digest('hex'),
    os_hash_algo: 'sha512',
    os_hash_value: createHash('sha512').update(bytes).digest('hex'),
  };
}
