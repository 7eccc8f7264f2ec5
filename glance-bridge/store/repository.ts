import { parseReference } from '../registry/reference.js';

/**
 * The registry repository an image was imported from (`docker_image` without host and tag), or
 * null for uploaded images: kept in the docker_repository column so the registry endpoint finds
 * the images of a name with one indexed query.
 */
export function repositoryOf(properties: Record<string, string>): string | null {
  const source = properties.docker_image;
  if (!source) return null;
  try {
    const { repository } = parseReference(source);
    return repository.length <= 255 ? repository : null;
  } catch {
    return null;
  }
}
