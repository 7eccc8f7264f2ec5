import { MANIFEST_DIGEST_PROPERTY } from '../client/types.js';
import { parseReference } from '../registry/reference.js';
import { isDigest } from '../store/blobs.js';
import type { ImageRepository } from '../store/images.js';
import type { ImageRecord } from '../store/types.js';

const BY_ID = /^berth\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/** The repository and tag an image was imported from, or null for uploaded images. */
function importedAs(image: ImageRecord): { repository: string; tag?: string } | null {
  const source = image.properties.docker_image;
  if (!source) return null;
  try {
    const ref = parseReference(source);
    return { repository: ref.repository, ...(ref.tag ? { tag: ref.tag } : {}) };
  } catch {
    return null;
  }
}

/**
 * Maps registry repository names onto store images: `berth/<image id>` is that image (tag
 * `latest`), and any other name is the source repository of imported images, tagged as they were
 * imported. Only active images are served; when a tag was imported more than once, the newest wins.
 */
export class RegistryNames {
  constructor(private readonly images: ImageRepository) {}

  /** Whether `name` is `berth/<image id>`, naming one image rather than a source repository. */
  isIdName(name: string): boolean {
    return BY_ID.test(name);
  }

  /** Active images `name` may serve, newest first; empty when the name is unknown. */
  async imagesNamed(name: string): Promise<ImageRecord[]> {
    const id = BY_ID.exec(name)?.[1];
    if (id) {
      const image = await this.images.get(id);
      return image?.status === 'active' ? [image] : [];
    }
    // One indexed query on docker_repository; the check here only repeats what the column says.
    return (await this.images.findActiveByRepository(name)).filter((i) => importedAs(i)?.repository === name);
  }

  /** The image `reference` (a tag or a served manifest digest) names among `candidates`. */
  pick(name: string, candidates: ImageRecord[], reference: string): ImageRecord | null {
    if (isDigest(reference)) return candidates.find((i) => i.properties[MANIFEST_DIGEST_PROPERTY] === reference) ?? null;
    if (BY_ID.test(name)) return reference === 'latest' ? (candidates[0] ?? null) : null;
    return candidates.find((i) => importedAs(i)?.tag === reference) ?? null;
  }
}
