import { imageError } from '../errors.js';
import type { ImageReference } from './types.js';

// Grammar after distribution's reference package (reference/regexp.go), simplified to what a
// pull needs: lowercase path components, tags up to 128 characters, sha256 digests.
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^\w[\w.-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const HOST = /^(?:\[[0-9a-fA-F:]+\]|[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?)(?::\d{1,5})?$/;

export const DOCKER_HUB = 'docker.io';

function invalid(source: string, why: string): Error {
  return imageError('INVALID_REFERENCE', `invalid image reference ${JSON.stringify(source)}: ${why}`, { source });
}

/**
 * Parses `docker://HOST[:PORT]/REPO[:TAG][@sha256:HEX]` or the same without the scheme. As in
 * Docker, the first path component is a registry only if it has a dot or a port or is
 * `localhost`; otherwise the reference is on Docker Hub (`library/` for one-component names).
 * A reference without tag or digest means `:latest`.
 */
export function parseReference(source: string): ImageReference {
  if (typeof source !== 'string' || source.length === 0 || source.length > 1024) throw invalid(String(source), 'empty or too long');
  let rest = source.startsWith('docker://') ? source.slice('docker://'.length) : source;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(rest)) throw invalid(source, 'only docker:// references can be imported');

  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw invalid(source, 'digest must be sha256:<64 hex>');
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(source, `bad tag ${JSON.stringify(tag)}`);
  }

  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    registry = first;
    parts.shift();
    if (!HOST.test(registry)) throw invalid(source, `bad registry host ${JSON.stringify(registry)}`);
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  if (parts.length === 0 || !parts.every((p) => COMPONENT.test(p))) throw invalid(source, 'repository must be lowercase path components');
  const repository = parts.join('/');
  if (repository.length > 255) throw invalid(source, 'repository name over 255 characters');

  if (!tag && !digest) tag = 'latest';
  return { registry, repository, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** The canonical `docker://` form, recorded as the image's `docker_image` property. */
export function formatReference(ref: ImageReference): string {
  return `docker://${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}
