import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { BerthError } from '../../common/errors.js';
import type { GlanceImage, ImageService } from '../../glance-bridge/client/types.js';

/**
 * An in-memory ImageService holding Glance image records and, for each, a function producing its
 * `file`. Counts downloads so tests can see a shared fetch.
 */
export class FakeImageService implements ImageService {
  readonly records = new Map<string, GlanceImage>();
  private readonly files = new Map<string, () => Promise<NodeJS.ReadableStream>>();
  downloads = 0;
  uploads = 0;
  /** Holds each upload until this promise settles (to observe a snapshot mid-upload). */
  uploadGate: Promise<void> = Promise.resolve();
  /** Resolves each download only once this promise settles (to hold a fetch in flight). */
  gate: Promise<void> = Promise.resolve();

  add(id: string, props: Partial<GlanceImage>, file?: Buffer | (() => Promise<NodeJS.ReadableStream>)): GlanceImage {
    const now = new Date().toISOString();
    const image: GlanceImage = {
      id, name: `image-${id.slice(0, 8)}`, status: 'active', visibility: 'public', container_format: 'docker', disk_format: 'raw',
      size: null, checksum: null, os_hash_algo: null, os_hash_value: null, owner: null, min_ram: 0, min_disk: 0, protected: false,
      tags: [], created_at: now, updated_at: now, self: `/v2/images/${id}`, file: `/v2/images/${id}/file`, schema: '/v2/schemas/image',
      ...props,
    };
    this.records.set(id, image);
    if (file) this.files.set(id, Buffer.isBuffer(file) ? async () => Readable.from([file]) : file);
    return image;
  }

  /** Glance's members call; unset, like an image service without it. */
  getMember?: (id: string, memberId: string) => Promise<{ status: string } | null>;

  async getImage(id: string): Promise<GlanceImage | null> {
    return this.records.get(id) ?? null;
  }

  async listImages(): Promise<GlanceImage[]> {
    return [...this.records.values()];
  }

  async downloadImage(id: string): Promise<NodeJS.ReadableStream> {
    this.downloads++;
    await this.gate;
    const file = this.files.get(id);
    if (!this.records.has(id) || !file) throw new BerthError('IMAGE_NOT_FOUND', `image ${id} has no data`, { status: 404 });
    return file();
  }

  async importImage(): Promise<GlanceImage> {
    throw new BerthError('NOT_SUPPORTED', 'the fake image service does not import', { status: 501 });
  }

  /** Like Glance: only a queued image takes data; it becomes active with the bytes as its file. */
  async uploadImage(id: string, data: NodeJS.ReadableStream): Promise<GlanceImage> {
    this.uploads++;
    const image = this.records.get(id);
    if (!image) throw new BerthError('IMAGE_NOT_FOUND', `image ${id} not found`, { status: 404 });
    if (image.status !== 'queued') throw new BerthError('IMAGE_INVALID_STATE', `image ${id} is ${image.status}, not queued`, { status: 409 });
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
    Object.assign(image, { status: 'active', size: bytes.length, updated_at: new Date().toISOString() });
    this.files.set(id, async () => Readable.from([bytes]));
    return { ...image };
  }

  async createImage(props: { name: string; container_format: string; disk_format: string } & Record<string, unknown>): Promise<GlanceImage> {
    return { ...this.add(randomUUID(), { ...props, status: 'queued' } as Partial<GlanceImage>) };
  }

  async deleteImage(id: string): Promise<void> {
    this.records.delete(id);
    this.files.delete(id);
  }
}
