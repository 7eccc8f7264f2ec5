import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { extract as tarExtract, pack as tarPack, type Header } from 'tar-stream';
import { BerthError } from '../../../common/errors.js';
import { untaggedArchive } from '../../../agent/archive-untag.js';

type Entry = Partial<Header> & { name: string; body?: string | Buffer };

async function archive(entries: Entry[]): Promise<Buffer> {
  const pack = tarPack();
  for (const { body, ...header } of entries) pack.entry(header, body ?? '');
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** The entries of an archive: name → { type, body }. */
async function entriesOf(stream: Readable): Promise<Map<string, { type: string; body: Buffer; linkname?: string | null }>> {
  const out = new Map<string, { type: string; body: Buffer; linkname?: string | null }>();
  const extract = tarExtract();
  stream.on('error', (err) => extract.destroy(err));
  stream.pipe(extract as unknown as NodeJS.WritableStream);
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    out.set(entry.header.name, { type: entry.header.type, body: Buffer.concat(chunks), linkname: entry.header.linkname });
  }
  return out;
}

const untag = async (entries: Entry[]) => entriesOf(untaggedArchive(Readable.from([await archive(entries)])));
const json = (b: Buffer | undefined): unknown => JSON.parse(b!.toString('utf8'));
const refusedWith =
  (pattern: RegExp) =>
  (e: unknown): boolean =>
    e instanceof BerthError && e.code === 'IMAGE_FETCH_FAILED' && pattern.test(e.message);

const CONFIG = 'a'.repeat(64);
const LAYER = 'b'.repeat(64);
const tagged = [{ Config: `${CONFIG}.json`, RepoTags: ['busybox:latest', 'registry:2'], Layers: [`${LAYER}/layer.tar`] }];

describe('agent image archives lose their names before docker load', () => {
  it('loads manifest.json items with no RepoTags, keeping what the engine needs and every other file byte for byte', async () => {
    const layer = Buffer.alloc(3000, 7);
    const out = await untag([
      { name: `${CONFIG}.json`, body: '{"rootfs":{}}' },
      { name: LAYER, type: 'directory' },
      { name: `${LAYER}/layer.tar`, body: layer },
      { name: 'manifest.json', body: JSON.stringify([{ ...tagged[0], Parent: 'sha256:p', LayerSources: {} }]) },
    ]);
    assert.deepEqual(json(out.get('manifest.json')?.body), [
      { Config: `${CONFIG}.json`, RepoTags: [], Layers: [`${LAYER}/layer.tar`], Parent: 'sha256:p', LayerSources: {} },
    ]);
    assert.deepEqual(out.get(`${LAYER}/layer.tar`)?.body, layer);
    assert.equal(out.get(`${CONFIG}.json`)?.body.toString(), '{"rootfs":{}}');
    assert.equal(out.get(`${LAYER}/`)?.type, 'directory');
  });

  it("drops tags under any spelling the engine's JSON decoder would match (repotags, REPOTAGS)", async () => {
    const out = await untag([
      { name: 'manifest.json', body: JSON.stringify([{ Config: 'c.json', repotags: ['busybox:latest'], REPOTAGS: ['registry:2'], Layers: [] }]) },
    ]);
    assert.deepEqual(json(out.get('manifest.json')?.body), [{ Config: 'c.json', RepoTags: [], Layers: [] }]);
  });

  it('drops the image name annotations of index.json and the legacy repositories file', async () => {
    const index = {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      annotations: { 'io.containerd.image.name': 'docker.io/library/busybox:latest' },
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: `sha256:${CONFIG}`,
          size: 10,
          annotations: { 'io.containerd.image.name': 'docker.io/library/busybox:latest', 'org.opencontainers.image.ref.name': 'latest' },
        },
      ],
    };
    const out = await untag([
      { name: 'index.json', body: JSON.stringify(index) },
      { name: 'repositories', body: '{"busybox":{"latest":"x"}}' },
      { name: 'oci-layout', body: '{}' },
    ]);
    assert.deepEqual(json(out.get('index.json')?.body), {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: `sha256:${CONFIG}`, size: 10 }],
    });
    assert.equal(out.has('repositories'), false);
    assert.equal(out.has('oci-layout'), true);
  });

  it('rewrites manifest.json under names that resolve to it (./manifest.json, x/../manifest.json) and writes them normalised', async () => {
    for (const name of ['./manifest.json', 'x/../manifest.json', '/manifest.json']) {
      const out = await untag([{ name, body: JSON.stringify(tagged) }]);
      assert.deepEqual([...out.keys()], ['manifest.json'], name);
      assert.deepEqual((json(out.get('manifest.json')?.body) as Array<{ RepoTags: unknown }>)[0]!.RepoTags, [], name);
    }
  });

  it('keeps the symlinks docker save writes for a layer shared by two images', async () => {
    const out = await untag([
      { name: `${LAYER}/layer.tar`, body: 'x' },
      { name: `${CONFIG}/layer.tar`, type: 'symlink', linkname: `../${LAYER}/layer.tar` },
      { name: 'manifest.json', body: JSON.stringify(tagged) },
    ]);
    assert.equal(out.get(`${CONFIG}/layer.tar`)?.type, 'symlink');
    assert.equal(out.get(`${CONFIG}/layer.tar`)?.linkname, `../${LAYER}/layer.tar`);
  });

  const hostile: Array<[string, Entry[], RegExp]> = [
    [
      'manifest.json as a symlink to a tagged copy',
      [
        { name: 'tags.json', body: JSON.stringify(tagged) },
        { name: 'manifest.json', type: 'symlink', linkname: 'tags.json' },
      ],
      /manifest\.json is a symlink/,
    ],
    [
      'manifest.json as a hard link',
      [
        { name: 'tags.json', body: JSON.stringify(tagged) },
        { name: 'manifest.json', type: 'link', linkname: 'tags.json' },
      ],
      /manifest\.json is a link/,
    ],
    ['repositories as a symlink', [{ name: 'repositories', type: 'symlink', linkname: 'r' }], /repositories is a symlink/],
    [
      'manifest.json reached through a directory symlink',
      [
        { name: 'd', type: 'symlink', linkname: '.' },
        { name: 'd/manifest.json', body: JSON.stringify(tagged) },
      ],
      /goes through the link "d"/,
    ],
    ['a device entry', [{ name: 'dev', type: 'character-device' }], /is a character-device/],
    ['a manifest.json that is not JSON', [{ name: 'manifest.json', body: '[{"RepoTags": ["busybox' }], /not JSON/],
    ['a manifest.json that is not a list', [{ name: 'manifest.json', body: '{"RepoTags": ["busybox:latest"]}' }], /not a list/],
  ];
  for (const [what, entries, why] of hostile) {
    it(`refuses an archive with ${what}`, async () => {
      await assert.rejects(untag(entries), refusedWith(why));
    });
  }

  it('passes a broken download on as an error', async () => {
    const good = await archive([{ name: 'manifest.json', body: JSON.stringify(tagged) }]);
    const source = new Readable({ read() {} });
    source.push(good.subarray(0, 700));
    setImmediate(() => source.destroy(new Error('connection reset')));
    await assert.rejects(entriesOf(untaggedArchive(source)));
  });
});
