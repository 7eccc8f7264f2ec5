import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { pack as tarPack } from 'tar-stream';
import { MediaType } from '../../glance-bridge/registry/manifest.js';
import type { Descriptor, Platform } from '../../glance-bridge/registry/types.js';

/** Builds small but real container images in memory: layers are tars, digests are true. */

export const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface BuiltBlob { descriptor: Descriptor; bytes: Buffer }

export interface BuiltImage {
  manifest: Buffer;
  manifestDigest: string;
  mediaType: string;
  config: BuiltBlob;
  layers: BuiltBlob[];
}

/** A layer tar holding `files` (path → content), gzip-compressed unless `compress` is false. */
export async function buildLayer(files: Record<string, string | Buffer>, opts: { compress?: boolean; oci?: boolean } = {}): Promise<{ blob: BuiltBlob; diffId: string }> {
  const pack = tarPack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => chunks.push(c as Buffer));
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const [name, content] of Object.entries(files)) pack.entry({ name, mode: 0o644, mtime: new Date(0) }, content);
  pack.finalize();
  await done;
  const tar = Buffer.concat(chunks);
  const compress = opts.compress ?? true;
  const bytes = compress ? gzipSync(tar) : tar;
  const mediaType = opts.oci || !compress
    ? (compress ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar')
    : 'application/vnd.docker.image.rootfs.diff.tar.gzip';
  return { blob: { bytes, descriptor: { mediaType, digest: sha256(bytes), size: bytes.length } }, diffId: sha256(tar) };
}

export interface BuildOptions {
  /** Files per layer; by default two layers with random content, so every build is unique. */
  layers?: Record<string, string | Buffer>[];
  platform?: Platform;
  oci?: boolean;
  /** false: uncompressed (OCI tar) layers. */
  compress?: boolean;
}

export async function buildImage(opts: BuildOptions = {}): Promise<BuiltImage> {
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const specs = opts.layers ?? [{ 'etc/berth-test': randomBytes(8).toString('hex') }, { 'srv/data.bin': randomBytes(2048) }];
  const built = await Promise.all(specs.map((files) => buildLayer(files, { oci: opts.oci ?? false, compress: opts.compress ?? true })));
  const config = Buffer.from(JSON.stringify({
    architecture: platform.architecture, os: platform.os, ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: built.map((b) => b.diffId) },
    history: built.map(() => ({ created_by: 'berth test' })),
  }));
  const configBlob: BuiltBlob = { bytes: config, descriptor: { mediaType: opts.oci ? MediaType.ociConfig : MediaType.dockerConfig, digest: sha256(config), size: config.length } };
  const mediaType = opts.oci ? MediaType.ociManifest : MediaType.dockerManifest;
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType, config: configBlob.descriptor, layers: built.map((b) => b.blob.descriptor),
  }, null, 3));
  return { manifest, manifestDigest: sha256(manifest), mediaType, config: configBlob, layers: built.map((b) => b.blob) };
}

/** A manifest list (or OCI index) over the given platform images. */
export function buildIndex(images: { image: BuiltImage; platform: Platform }[], oci = false): { bytes: Buffer; digest: string; mediaType: string } {
  const mediaType = oci ? MediaType.ociIndex : MediaType.dockerManifestList;
  const bytes = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType,
    manifests: images.map(({ image, platform }) => ({ mediaType: image.mediaType, digest: image.manifestDigest, size: image.manifest.length, platform })),
  }));
  return { bytes, digest: sha256(bytes), mediaType };
}
