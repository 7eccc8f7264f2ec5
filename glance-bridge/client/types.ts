/**
 * The view other Berth parts have of the image service: a Glance v2 API subset. Images are keyed
 * by Glance id and, for their content, by the manifest digest; never by name.
 */
export type ImageStatus = 'queued' | 'saving' | 'active' | 'killed' | 'deleted' | 'deactivated' | 'importing' | 'uploading';

/** A Glance v2 image as the API returns it (custom properties are top-level keys). */
export interface GlanceImage {
  id: string;
  name: string | null;
  status: ImageStatus;
  visibility: 'public' | 'private' | 'shared' | 'community';
  container_format: string | null;
  disk_format: string | null;
  size: number | null;
  checksum: string | null;
  os_hash_algo: string | null;
  os_hash_value: string | null;
  owner: string | null;
  min_ram: number;
  min_disk: number;
  protected: boolean;
  tags: string[];
  created_at: string;
  updated_at: string;
  self: string;
  file: string;
  schema: string;
  /** Berth's properties: the registry reference and manifest digest an image came from, and
   * the Docker image id (config digest) a host gets after loading its `file`. */
  docker_image?: string;
  docker_digest?: string;
  docker_image_id?: string;
  /** Digest of the manifest the registry endpoint serves for an imported image (MANIFEST_DIGEST_PROPERTY). */
  berth_manifest_digest?: string;
  [property: string]: unknown;
}

/**
 * Image property naming the manifest the image service's registry endpoint serves for an imported
 * image (differs from docker_digest after a zstd conversion); hosts pull `berth/<id>@<it>`.
 */
export const MANIFEST_DIGEST_PROPERTY = 'berth_manifest_digest';

export interface ImportProgress {
  image_id: string;
  status: ImageStatus;
  bytes_done: number;
  bytes_total: number | null;
}

export interface ImageService {
  getImage(id: string): Promise<GlanceImage | null>;
  listImages(filters?: Record<string, string>): Promise<GlanceImage[]>;
  /** Streams the image's `file` (a docker-archive tar for container_format=docker). */
  downloadImage(id: string): Promise<NodeJS.ReadableStream>;
  /** Imports a registry reference (`docker://HOST/REPO:TAG`); resolves to the active image. */
  importImage(source: string, opts?: { name?: string; onProgress?: (p: ImportProgress) => void }): Promise<GlanceImage>;
  deleteImage(id: string): Promise<void>;
  /** Creates a queued image record (POST /v2/images): custom properties are top-level keys. */
  createImage(
    props: { name: string; container_format: string; disk_format: string; visibility?: GlanceImage['visibility'] } & Record<string, unknown>,
  ): Promise<GlanceImage>;
  /**
   * Streams image data into a queued image (`PUT /v2/images/{id}/file`); resolves to the image,
   * active. `size`, when known, is sent as Content-Length.
   */
  uploadImage(id: string, data: NodeJS.ReadableStream, size?: number): Promise<GlanceImage>;
  /**
   * Berth's export (`POST /v2/images/{id}/actions/export`): the glance-bridge copies its image into
   * the Glance of its `[glance]` section; resolves to the remote image, active and verified.
   */
  exportImage(id: string, opts?: { visibility?: GlanceImage['visibility']; name?: string }): Promise<GlanceImage>;
  /**
   * The membership of project `memberId` in shared image `id` (GET /v2/images/{id}/members/{member}),
   * null when it is not a member (or the image is not shared).
   */
  getMember(id: string, memberId: string): Promise<{ status: string } | null>;
  /** Adds (or overwrites) custom properties with Glance's JSON-patch `add` ops; resolves to the image. */
  setProperties(id: string, properties: Record<string, string>): Promise<GlanceImage>;
  /** Sets container_format and disk_format of a queued image (JSON-patch `replace`, as Glance wants for core attributes). */
  setFormats(id: string, formats: { container_format: string; disk_format: string }): Promise<GlanceImage>;
}
