import { randomUUID } from 'node:crypto';
import { Op, col, fn, type OrderItem, type Sequelize, type WhereOptions } from 'sequelize';
import type { ImageStatus } from '../client/types.js';
import { invalidInput } from '../../common/errors.js';
import { imageError } from '../errors.js';
import { defineModels, type BlobRole, type ImageModels, type ImageRow } from './models.js';
import { afterMarker, listOrder, listWhere, type ListQuery } from './listing.js';
import { repositoryOf } from './repository.js';
import { StorageReservations } from './reservations.js';
import { assertTransition } from './states.js';
import type { BlobEntry, ImageBlobs, ImagePatch, ImageRecord, NewImage } from './types.js';

function toRecord(row: ImageRow): ImageRecord {
  const r = row.get({ plain: true });
  return {
    id: r.id,
    name: r.name,
    status: r.status,
    visibility: r.visibility,
    container_format: r.container_format,
    disk_format: r.disk_format,
    // BIGINT comes back as a string from PostgreSQL.
    size: r.size === null ? null : Number(r.size),
    checksum: r.checksum,
    os_hash_algo: r.os_hash_algo,
    os_hash_value: r.os_hash_value,
    owner: r.owner,
    min_ram: r.min_ram,
    min_disk: r.min_disk,
    protected: Boolean(r.protected),
    tags: r.tags ?? [],
    properties: r.properties ?? {},
    created_at: new Date(r.created_at),
    updated_at: new Date(r.updated_at),
  };
}

/** Image metadata: the only code that queries the images and image_blobs tables. */
export class ImageRepository {
  private readonly m: ImageModels;
  /** Bytes held by running uploads and imports, per project (reservations.ts): quota checks count them. */
  readonly reservations = new StorageReservations(async (owner) => (await this.usage(owner)).bytes);

  constructor(readonly db: Sequelize) {
    this.m = defineModels(db);
  }

  async create(init: NewImage): Promise<ImageRecord> {
    const id = init.id ?? randomUUID();
    if (await this.m.Image.findByPk(id)) throw imageError('IMAGE_CONFLICT', `an image with id ${id} already exists`, { image_id: id });
    const properties = init.properties ?? {};
    const row = await this.m.Image.create({
      id,
      name: init.name ?? null,
      status: init.status ?? 'queued',
      visibility: init.visibility ?? 'shared',
      container_format: init.container_format ?? null,
      disk_format: init.disk_format ?? null,
      size: null,
      checksum: null,
      os_hash_algo: null,
      os_hash_value: null,
      owner: init.owner ?? null,
      min_ram: init.min_ram ?? 0,
      min_disk: init.min_disk ?? 0,
      protected: init.protected ?? false,
      tags: init.tags ?? [],
      properties,
      docker_digest: properties.docker_digest ?? null,
      docker_repository: repositoryOf(properties),
    });
    return toRecord(row);
  }

  /** The image, or null when it does not exist or was deleted. */
  async get(id: string): Promise<ImageRecord | null> {
    const row = await this.m.Image.findOne({ where: { id, deleted: false } });
    return row ? toRecord(row) : null;
  }

  async require(id: string): Promise<ImageRecord> {
    const found = await this.get(id);
    if (!found) throw imageError('IMAGE_NOT_FOUND', `no image with id ${id}`, { image_id: id });
    return found;
  }

  /**
   * One page of images matching `q`, in its sort order, after its marker. Filters (core columns,
   * size, tags, custom properties, the caller's visibility and memberships), the order and the
   * marker all run in SQL: a page reads at most `limit + 1` rows however many images the store
   * holds. The marker must be an image of this listing (Glance answers 400 otherwise).
   */
  async list(q: ListQuery): Promise<{ images: ImageRecord[]; more: boolean }> {
    const where = listWhere(this.db, q);
    const and: WhereOptions[] = [where];
    if (q.marker) {
      const at = await this.m.Image.findOne({ where: { [Op.and]: [where, { id: q.marker }] } });
      if (!at) throw invalidInput(`marker ${q.marker} is not an image in this listing`, { marker: q.marker });
      and.push(afterMarker(q.sort, at.get({ plain: true }) as unknown as Record<string, string | number | boolean | Date | null>));
    }
    const rows = await this.m.Image.findAll({ where: { [Op.and]: and }, order: listOrder(q.sort) as OrderItem[], limit: q.limit + 1 });
    return { images: rows.slice(0, q.limit).map(toRecord), more: rows.length > q.limit };
  }

  /** What `owner` holds: live images and the bytes of their data, for project quotas (one aggregate query). */
  async usage(owner: string): Promise<{ count: number; bytes: number }> {
    const [row] = (await this.m.Image.findAll({
      where: { owner, deleted: false },
      raw: true,
      attributes: [
        [fn('COUNT', col('id')), 'count'],
        [fn('COALESCE', fn('SUM', col('size')), 0), 'bytes'],
      ],
    })) as unknown as Array<{ count: number | string; bytes: number | string }>;
    return { count: Number(row?.count ?? 0), bytes: Number(row?.bytes ?? 0) };
  }

  /**
   * Active images imported from registry repository `repository` (the docker_repository column,
   * copied out of docker_image), newest first: what the registry endpoint serves under that name.
   */
  async findActiveByRepository(repository: string): Promise<ImageRecord[]> {
    const rows = await this.m.Image.findAll({
      where: { docker_repository: repository, status: 'active', deleted: false },
      order: [
        ['created_at', 'DESC'],
        ['id', 'DESC'],
      ],
    });
    return rows.map(toRecord);
  }

  /** The oldest live image holding this manifest digest in one of `statuses` (of `owner` only, when given). */
  async findByDockerDigest(digest: string, statuses: ImageStatus[], owner?: string): Promise<ImageRecord | null> {
    const where = { docker_digest: digest, status: statuses, deleted: false, ...(owner !== undefined ? { owner } : {}) };
    const row = await this.m.Image.findOne({ where, order: [['created_at', 'ASC']] });
    return row ? toRecord(row) : null;
  }

  async findByStatus(status: ImageStatus): Promise<ImageRecord[]> {
    return (await this.m.Image.findAll({ where: { status, deleted: false } })).map(toRecord);
  }

  /**
   * Moves an image to `to` (checked against the lifecycle table) and applies `patch`. The write
   * is conditional on the status read, so a concurrent change (say, a delete during an import)
   * makes it fail instead of being overwritten. Single statements, no transaction: on SQLite
   * Sequelize runs each transaction on its own connection, which would meet SQLITE_BUSY.
   */
  async transition(id: string, to: ImageStatus, patch: ImagePatch = {}): Promise<ImageRecord> {
    const current = await this.require(id);
    assertTransition(id, current.status, to);
    return this.updateWhile(current, to, patch);
  }

  /** Applies `patch` if the image is still in status `expected`; IMAGE_INVALID_STATE otherwise. */
  async update(id: string, expected: ImageStatus, patch: ImagePatch): Promise<ImageRecord> {
    const current = await this.require(id);
    if (current.status !== expected) {
      throw imageError('IMAGE_INVALID_STATE', `image ${id} is ${current.status}, not ${expected}`, { image_id: id, status: current.status });
    }
    return this.updateWhile(current, expected, patch);
  }

  private async updateWhile(current: ImageRecord, to: ImageStatus, patch: ImagePatch): Promise<ImageRecord> {
    const properties = patch.properties ?? current.properties;
    const [changed] = await this.m.Image.update(
      { ...patch, status: to, properties, docker_digest: properties.docker_digest ?? null, docker_repository: repositoryOf(properties) },
      { where: { id: current.id, status: current.status, deleted: false } },
    );
    const now = await this.require(current.id);
    if (changed === 0) {
      throw imageError('IMAGE_INVALID_STATE', `image ${current.id} changed to ${now.status} meanwhile`, { image_id: current.id, status: now.status });
    }
    return now;
  }

  /**
   * Records the hashes of an active image that became active before they were known
   * (import/deferred-hashes.ts); false when the image is gone, not active or already has them.
   */
  async setHashes(id: string, hashes: { checksum: string; os_hash_algo: string; os_hash_value: string }): Promise<boolean> {
    const [changed] = await this.m.Image.update(hashes, { where: { id, status: 'active', deleted: false, checksum: null } });
    return changed > 0;
  }

  /** Ids of active images with data but no hashes recorded: imports and uploads whose hashing a stop interrupted. */
  async activeWithoutHashes(): Promise<string[]> {
    const rows = await this.m.Image.findAll({ where: { status: 'active', deleted: false, checksum: null }, attributes: ['id'] });
    const ids = rows.map((r) => r.id);
    const withBlobs = ids.length
      ? new Set((await this.m.ImageBlob.findAll({ where: { image_id: ids, role: ['config', 'file'] }, attributes: ['image_id'] })).map((r) => r.image_id))
      : new Set<string>();
    return ids.filter((id) => withBlobs.has(id));
  }

  /** Soft delete, as Glance does; the blob rows go so their blobs become garbage. */
  async markDeleted(id: string): Promise<void> {
    const current = await this.require(id);
    if (current.protected) throw imageError('IMAGE_PROTECTED', `image ${id} is protected`, { image_id: id });
    const [changed] = await this.m.Image.update({ status: 'deleted', deleted: true, deleted_at: new Date() }, { where: { id, deleted: false } });
    if (changed === 0) throw imageError('IMAGE_NOT_FOUND', `no image with id ${id}`, { image_id: id });
    await this.m.ImageBlob.destroy({ where: { image_id: id } });
  }

  /** Replaces the image's blob list (destroy, then one multi-row insert). */
  async setBlobs(imageId: string, blobs: ImageBlobs): Promise<void> {
    const rows = [
      { image_id: imageId, role: 'config' as BlobRole, position: 0, ...blobs.config },
      ...blobs.layers.map((l, i) => ({ image_id: imageId, role: 'layer' as BlobRole, position: i, ...l })),
    ];
    await this.m.ImageBlob.destroy({ where: { image_id: imageId } });
    await this.m.ImageBlob.bulkCreate(rows);
  }

  /** Records uploaded data: one blob served as it is. */
  async setFile(imageId: string, file: BlobEntry): Promise<void> {
    await this.m.ImageBlob.destroy({ where: { image_id: imageId } });
    await this.m.ImageBlob.create({ image_id: imageId, role: 'file', position: 0, ...file });
  }

  /** Records the manifest hosts pull (replacing any earlier one); the blob may be written after. */
  async setManifest(imageId: string, manifest: BlobEntry): Promise<void> {
    await this.m.ImageBlob.destroy({ where: { image_id: imageId, role: 'manifest' } });
    await this.m.ImageBlob.create({ image_id: imageId, role: 'manifest', position: 0, ...manifest });
  }

  async manifestOf(imageId: string): Promise<BlobEntry | null> {
    const row = await this.m.ImageBlob.findOne({ where: { image_id: imageId, role: 'manifest' } });
    return row ? { digest: row.digest, media_type: row.media_type, size: Number(row.size) } : null;
  }

  async clearFile(imageId: string): Promise<void> {
    await this.m.ImageBlob.destroy({ where: { image_id: imageId, role: 'file' } });
  }

  async fileOf(imageId: string): Promise<BlobEntry | null> {
    const row = await this.m.ImageBlob.findOne({ where: { image_id: imageId, role: 'file' } });
    return row ? { digest: row.digest, media_type: row.media_type, size: Number(row.size) } : null;
  }

  /** Ids of the live images whose config, layers, file or manifest is `digest`. */
  async imagesWithBlob(digest: string): Promise<string[]> {
    const rows = await this.m.ImageBlob.findAll({ where: { digest }, attributes: ['image_id'], group: ['image_id'] });
    return rows.map((r) => r.image_id);
  }

  async isReferenced(digest: string): Promise<boolean> {
    return (await this.m.ImageBlob.count({ where: { digest } })) > 0;
  }

  async blobsOf(imageId: string): Promise<ImageBlobs | null> {
    const rows = await this.m.ImageBlob.findAll({
      where: { image_id: imageId },
      order: [
        ['role', 'ASC'],
        ['position', 'ASC'],
      ],
    });
    const entry = (r: (typeof rows)[number]): BlobEntry => ({ digest: r.digest, media_type: r.media_type, size: Number(r.size) });
    const config = rows.find((r) => r.role === 'config');
    if (!config) return null;
    return { config: entry(config), layers: rows.filter((r) => r.role === 'layer').map(entry) };
  }

  /** Every digest a live image refers to: what blob GC must keep. */
  async referencedDigests(): Promise<Set<string>> {
    const rows = await this.m.ImageBlob.findAll({ attributes: ['digest'], group: ['digest'] });
    return new Set(rows.map((r) => r.digest));
  }
}
