import { createHash } from 'node:crypto';
import tar from 'tar-stream';

export interface FakeArchive {
  tar: Buffer;
  imageId: string;
}

/**
 * A minimal docker-archive (what `docker save` writes): manifest.json naming a config blob and no
 * layers. Its image id is the sha256 of the config, as Docker computes it.
 */
export async function buildDockerArchive(tag: string | null, seed: string = tag ?? 'untagged'): Promise<FakeArchive> {
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/sbin/init'] }, rootfs: { type: 'layers', diff_ids: [] }, comment: seed }),
  );
  const hex = createHash('sha256').update(config).digest('hex');
  const manifest = Buffer.from(JSON.stringify([{ Config: `${hex}.json`, RepoTags: tag === null ? null : [tag], Layers: [] }]));
  const pack = tar.pack();
  pack.entry({ name: `${hex}.json` }, config);
  pack.entry({ name: 'manifest.json' }, manifest);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return { tar: Buffer.concat(chunks), imageId: `sha256:${hex}` };
}

/** Image ids in a docker-archive: the sha256 of each config the manifest names. */
export async function imageIdsInArchive(archive: NodeJS.ReadableStream): Promise<string[]> {
  const files = new Map<string, Buffer>();
  const extract = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => {
        chunks.push(c as Buffer);
      });
      stream.on('end', () => {
        files.set(header.name, Buffer.concat(chunks));
        next();
      });
      stream.on('error', reject);
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
    archive.on('error', reject);
  });
  archive.pipe(extract);
  await done;
  const manifest = files.get('manifest.json');
  if (!manifest) throw new Error('archive has no manifest.json');
  const entries = JSON.parse(manifest.toString('utf8')) as Array<{ Config: string }>;
  return entries.map((e) => {
    const config = files.get(e.Config);
    if (!config) throw new Error(`archive lacks config ${e.Config}`);
    return `sha256:${createHash('sha256').update(config).digest('hex')}`;
  });
}
