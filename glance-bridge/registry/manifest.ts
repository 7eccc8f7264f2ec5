import { imageError } from '../errors.js';
import type { Descriptor, Platform } from './types.js';

export const MediaType = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
} as const;

/** Every manifest type the bridge can use, in the Accept header of each manifest request. */
export const MANIFEST_ACCEPT = [MediaType.dockerManifest, MediaType.dockerManifestList, MediaType.ociManifest, MediaType.ociIndex];

/** Layer types the bridge imports: tar and gzip as they come; zstd is converted to tar (../zstd.ts). */
export const LAYER_TYPES: ReadonlySet<string> = new Set([
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd',
]);
const CONFIG_TYPES: ReadonlySet<string> = new Set([MediaType.dockerConfig, MediaType.ociConfig]);

export type ManifestDocument =
  { kind: 'image'; mediaType: string; config: Descriptor; layers: Descriptor[] } | { kind: 'index'; mediaType: string; manifests: Descriptor[] };

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

function invalid(message: string, details: Record<string, unknown> = {}): Error {
  return imageError('MANIFEST_INVALID', message, details);
}

function parseJsonObject(bytes: Buffer, contentType: string): Record<string, unknown> {
  const text = bytes.toString('utf8').trimStart();
  // A proxy login page or a web server's error page: say so rather than "Unexpected token <".
  if (/^text\/html\b/i.test(contentType) || text.startsWith('<')) {
    throw invalid(`registry answered with HTML (content-type ${contentType || 'none'}) instead of a manifest; is this a registry?`, {
      content_type: contentType,
    });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw invalid(`manifest is not valid JSON (content-type ${contentType || 'none'})`, { content_type: contentType });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalid('manifest is not a JSON object');
  return doc as Record<string, unknown>;
}

export function parseDescriptor(value: unknown, where: string): Descriptor {
  const d = value as Partial<Descriptor> | null;
  if (typeof d !== 'object' || d === null) throw invalid(`${where} is not a descriptor object`);
  if (typeof d.mediaType !== 'string' || d.mediaType === '') throw invalid(`${where} has no mediaType`);
  if (typeof d.digest !== 'string') throw invalid(`${where} has no digest`);
  if (!DIGEST_RE.test(d.digest)) {
    throw imageError('MANIFEST_UNSUPPORTED', `${where} digest ${JSON.stringify(d.digest)} is not sha256; only sha256 content is supported`, {
      digest: d.digest,
    });
  }
  if (typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) throw invalid(`${where} has no valid size`);
  return d as Descriptor;
}

function parseList(value: unknown, where: string): Descriptor[] {
  if (!Array.isArray(value)) throw invalid(`${where} is not a list`);
  return value.map((v, i) => parseDescriptor(v, `${where}[${i}]`));
}

function parseImage(doc: Record<string, unknown>, mediaType: string): ManifestDocument {
  const config = parseDescriptor(doc.config, 'config');
  if (!CONFIG_TYPES.has(config.mediaType)) {
    throw imageError('MANIFEST_UNSUPPORTED', `config media type ${config.mediaType} is not a container image (an OCI artifact?)`, {
      media_type: config.mediaType,
    });
  }
  const layers = parseList(doc.layers, 'layers');
  for (const layer of layers) {
    if (!LAYER_TYPES.has(layer.mediaType)) {
      // Includes foreign/non-distributable layers, which live outside the registry (Windows bases).
      throw imageError('MANIFEST_UNSUPPORTED', `layer ${layer.digest} has unsupported media type ${layer.mediaType}`, {
        digest: layer.digest,
        media_type: layer.mediaType,
      });
    }
  }
  return { kind: 'image', mediaType, config, layers };
}

/**
 * Interprets manifest bytes. The body's own `mediaType` wins over Content-Type (registries get
 * the header wrong); Docker schema 1 is refused, since it has no config blob and so no image id.
 */
export function parseManifest(bytes: Buffer, contentType: string): ManifestDocument {
  const doc = parseJsonObject(bytes, contentType);
  const declared = typeof doc.mediaType === 'string' ? doc.mediaType : contentType.split(';')[0]!.trim();
  if (doc.schemaVersion === 1 || declared === MediaType.dockerSchema1 || declared === MediaType.dockerSchema1Signed) {
    throw imageError(
      'MANIFEST_UNSUPPORTED',
      'Docker schema 1 manifests are not supported (deprecated since Docker 1.10); push the image again with a current Docker or use its digest-addressed schema 2 copy',
      { media_type: declared || 'schema1' },
    );
  }
  if (doc.schemaVersion !== 2) throw invalid(`unknown manifest schemaVersion ${JSON.stringify(doc.schemaVersion)}`);
  if (declared === MediaType.dockerManifestList || declared === MediaType.ociIndex || (Array.isArray(doc.manifests) && !doc.layers)) {
    return { kind: 'index', mediaType: declared || MediaType.ociIndex, manifests: parseList(doc.manifests, 'manifests') };
  }
  if (declared === MediaType.dockerManifest || declared === MediaType.ociManifest || doc.config !== undefined) {
    return parseImage(doc, declared || MediaType.ociManifest);
  }
  throw imageError('MANIFEST_UNSUPPORTED', `unsupported manifest media type ${JSON.stringify(declared)}`, { media_type: declared });
}

export function parsePlatform(value: string): Platform {
  const [os, architecture, variant, ...extra] = value.split('/');
  if (!os || !architecture || extra.length) throw imageError('INVALID_REFERENCE', `platform must be OS/ARCH[/VARIANT], got ${JSON.stringify(value)}`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

/** The index entry for `want`; attestation and unknown-platform entries never match. */
export function selectPlatform(manifests: Descriptor[], want: Platform): Descriptor {
  const candidates = manifests.filter(
    (m) =>
      m.platform &&
      m.platform.os === want.os &&
      m.platform.architecture === want.architecture &&
      (m.mediaType === MediaType.dockerManifest || m.mediaType === MediaType.ociManifest),
  );
  const exact = want.variant ? candidates.find((m) => m.platform!.variant === want.variant) : candidates[0];
  if (exact) return exact;
  const available = manifests
    .filter((m) => m.platform && m.platform.os !== 'unknown')
    .map((m) => [m.platform!.os, m.platform!.architecture, m.platform!.variant].filter(Boolean).join('/'));
  const wanted = [want.os, want.architecture, want.variant].filter(Boolean).join('/');
  throw imageError('PLATFORM_NOT_FOUND', `image has no ${wanted} variant (has: ${available.join(', ') || 'none'})`, { platform: wanted, available });
}
