import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { pack as tarPack, type Header } from 'tar-stream';
import { MediaType } from '../../glance-bridge/registry/manifest.js';
import type { Descriptor, Platform } from '../../glance-bridge/registry/types.js';

/** Builds small but real container images in memory: layers are tars, digests are true. */

export const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface BuiltBlob {
  descriptor: Descriptor;
  bytes: Buffer;
}

export interface BuiltImage {
  manifest: Buffer;
  manifestDigest: string;
  mediaType: string;
  config: BuiltBlob;
  layers: BuiltBlob[];
}

export type Compression = 'gzip' | 'zstd' | 'none';

/** A raw tar entry, for layers a well-behaved builder would never write. */
export interface RawEntry {
  header: Partial<Header> & { name: string };
  content?: string | Buffer;
}

export async function tarOf(files: Record<string, string | Buffer> | RawEntry[]): Promise<Buffer> {
  const pack = tarPack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => chunks.push(c as Buffer));
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  const entries: RawEntry[] = Array.isArray(files)
    ? files
    : Object.entries(files).map(([name, content]) => ({ header: { name, mode: 0o644, mtime: new Date(0) }, content }));
  for (const e of entries) {
    if (e.content === undefined) pack.entry(e.header);
    else pack.entry(e.header, e.content);
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

const LAYER_TYPE: Record<Compression, { docker: string; oci: string }> = {
  gzip: { docker: 'application/vnd.docker.image.rootfs.diff.tar.gzip', oci: 'application/vnd.oci.image.layer.v1.tar+gzip' },
  zstd: { docker: 'application/vnd.oci.image.layer.v1.tar+zstd', oci: 'application/vnd.oci.image.layer.v1.tar+zstd' },
  none: { docker: 'application/vnd.oci.image.layer.v1.tar', oci: 'application/vnd.oci.image.layer.v1.tar' },
};

/** Compresses with Debian's zstd command, as the bridge decompresses with it. */
export function zstdCompress(data: Buffer): Buffer {
  return execFileSync('zstd', ['-q', '-c', '-3'], { input: data, maxBuffer: 1024 * 1024 * 1024 });
}

/** A layer tar holding `files` (path → content, or raw entries), gzip-compressed unless told otherwise. */
export async function buildLayer(
  files: Record<string, string | Buffer> | RawEntry[],
  opts: { compress?: boolean; compression?: Compression; oci?: boolean } = {},
): Promise<{ blob: BuiltBlob; diffId: string }> {
  const tar = await tarOf(files);
  const compression: Compression = opts.compression ?? ((opts.compress ?? true) ? 'gzip' : 'none');
  const bytes = compression === 'gzip' ? gzipSync(tar) : compression === 'zstd' ? zstdCompress(tar) : tar;
  const mediaType = LAYER_TYPE[compression][opts.oci ? 'oci' : 'docker'];
  return { blob: { bytes, descriptor: { mediaType, digest: sha256(bytes), size: bytes.length } }, diffId: sha256(tar) };
}

export interface BuildOptions {
  /** Files per layer; by default two layers with random content, so every build is unique. */
  layers?: Record<string, string | Buffer>[];
  platform?: Platform;
  oci?: boolean;
  /** false: uncompressed (OCI tar) layers. */
  compress?: boolean;
  /** Per layer, overriding `compress`. */
  compression?: Compression[];
  /** Raw layer entries, overriding `layers`. */
  rawLayers?: RawEntry[][];
}

export async function buildImage(opts: BuildOptions = {}): Promise<BuiltImage> {
  const platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
  const specs = opts.layers ?? [{ 'etc/berth-test': randomBytes(8).toString('hex') }, { 'srv/data.bin': randomBytes(2048) }];
  const sources: (Record<string, string | Buffer> | RawEntry[])[] = opts.rawLayers ?? specs;
  const built = await Promise.all(
    sources.map((files, i) =>
      buildLayer(files, {
        oci: opts.oci ?? false,
        compress: opts.compress ?? true,
        ...(opts.compression?.[i] ? { compression: opts.compression[i] } : {}),
      }),
    ),
  );
  const config = Buffer.from(
    JSON.stringify({
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      config: { Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: built.map((b) => b.diffId) },
      history: built.map(() => ({ created_by: 'berth test' })),
    }),
  );
  const configBlob: BuiltBlob = {
    bytes: config,
    descriptor: { mediaType: opts.oci ? MediaType.ociConfig : MediaType.dockerConfig, digest: sha256(config), size: config.length },
  };
  const mediaType = opts.oci ? MediaType.ociManifest : MediaType.dockerManifest;
  const manifest = Buffer.from(
    JSON.stringify(
      {
        schemaVersion: 2,
        mediaType,
        config: configBlob.descriptor,
        layers: built.map((b) => b.blob.descriptor),
      },
      null,
      3,
    ),
  );
  return { manifest, manifestDigest: sha256(manifest), mediaType, config: configBlob, layers: built.map((b) => b.blob) };
}

/** A manifest list (or OCI index) over the given platform images. */
export function buildIndex(images: { image: BuiltImage; platform: Platform }[], oci = false): { bytes: Buffer; digest: string; mediaType: string } {
  const mediaType = oci ? MediaType.ociIndex : MediaType.dockerManifestList;
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      manifests: images.map(({ image, platform }) => ({ mediaType: image.mediaType, digest: image.manifestDigest, size: image.manifest.length, platform })),
    }),
  );
  return { bytes, digest: sha256(bytes), mediaType };
}

/**
 * What `docker save <image id>` writes for `image`: layer directories first, then the config, then
 * manifest.json last (the order Docker 20.10 uses), naming no image. `configName` overrides the
 * config's file name, to test that ids come from content, not names; `extra` adds files (an
 * index.json, a repositories file); `repoTags` is what manifest.json names.
 */
export async function buildDockerSave(
  image: BuiltImage,
  opts: { configName?: string; repoTags?: unknown; extra?: Record<string, string> } = {},
): Promise<Buffer> {
  const hex = (d: string) => d.slice('sha256:'.length);
  const configName = opts.configName ?? `${hex(image.config.descriptor.digest)}.json`;
  const layerNames = image.layers.map((l) => `${hex(l.descriptor.digest)}/layer.tar`);
  const files: Record<string, string | Buffer> = {};
  image.layers.forEach((l, i) => {
    files[layerNames[i]!] = l.bytes;
  });
  files[configName] = image.config.bytes;
  Object.assign(files, opts.extra ?? {});
  files['manifest.json'] = JSON.stringify([{ Config: configName, RepoTags: opts.repoTags === undefined ? null : opts.repoTags, Layers: layerNames }]);
  return tarOf(files);
}
