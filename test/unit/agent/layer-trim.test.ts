import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { extract as tarExtract, pack as tarPack } from 'tar-stream';
import { trimmable, trimmedArchive } from '../../../agent/layer-trim.js';

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

interface Entry {
  name: string;
  body: Buffer;
}

async function tarOf(entries: Entry[]): Promise<Buffer> {
  const p = tarPack();
  for (const e of entries) p.entry({ name: e.name, size: e.body.length }, e.body);
  p.finalize();
  const chunks: Buffer[] = [];
  for await (const c of p) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function namesIn(stream: Readable): Promise<Map<string, number>> {
  const x = tarExtract();
  stream.on('error', (err) => x.destroy(err));
  stream.pipe(x as unknown as NodeJS.WritableStream);
  const out = new Map<string, number>();
  for await (const e of x) {
    let n = 0;
    for await (const c of e) n += (c as Buffer).length;
    out.set(e.header.name, n);
  }
  return out;
}

/** Layers as `docker save` of Docker ≤ 24 writes them: `<v1 id>/{VERSION,json,layer.tar}`, the top one's json with the image config. */
function legacyArchive(layers: Buffer[], mixUp = false): { tar: Promise<Buffer>; diffIds: string[] } {
  const diffIds = layers.map((l) => `sha256:${sha(l)}`);
  const config = Buffer.from(JSON.stringify({ rootfs: { type: 'layers', diff_ids: diffIds }, config: {} }));
  const dirs = layers.map((_, i) => sha(`v1-${i}`));
  const entries: Entry[] = [{ name: `${sha(config)}.json`, body: config }];
  layers.forEach((l, i) => {
    const top = i === layers.length - 1;
    const json = top !== mixUp ? { id: dirs[i], config: { Cmd: ['sh'] } } : { id: dirs[i], created: '1970-01-01T00:00:00Z' };
    entries.push({ name: `${dirs[i]}/VERSION`, body: Buffer.from('1.0') }, { name: `${dirs[i]}/json`, body: Buffer.from(JSON.stringify(json)) });
    entries.push({ name: `${dirs[i]}/layer.tar`, body: l });
  });
  entries.push({
    name: 'manifest.json',
    body: Buffer.from(JSON.stringify([{ Config: `${sha(config)}.json`, RepoTags: null, Layers: dirs.map((d) => `${d}/layer.tar`) }])),
  });
  return { tar: tarOf(entries), diffIds };
}

/** The OCI layout of Docker 25+: every blob under blobs/sha256, layers uncompressed. */
function ociArchive(layers: Buffer[]): { tar: Promise<Buffer>; diffIds: string[] } {
  const diffIds = layers.map((l) => `sha256:${sha(l)}`);
  const config = Buffer.from(JSON.stringify({ rootfs: { type: 'layers', diff_ids: diffIds } }));
  const entries: Entry[] = [
    ...layers.map((l) => ({ name: `blobs/sha256/${sha(l)}`, body: l })),
    { name: `blobs/sha256/${sha(config)}`, body: config },
    { name: 'index.json', body: Buffer.from('{"schemaVersion":2,"manifests":[]}') },
    {
      name: 'manifest.json',
      body: Buffer.from(JSON.stringify([{ Config: `blobs/sha256/${sha(config)}`, RepoTags: null, Layers: layers.map((l) => `blobs/sha256/${sha(l)}`) }])),
    },
  ];
  return { tar: tarOf(entries), diffIds };
}

const layer = (fill: number, size: number) => Buffer.alloc(size, fill);

describe('agent trimmedArchive: a commit without its base image layers', () => {
  const base = [layer(1, 40_000), layer(2, 30_000)];
  const added = layer(3, 5_000);

  for (const [layout, make] of [
    ['the layout of Docker ≤ 24', legacyArchive],
    ['the OCI layout of Docker 25+', ociArchive],
  ] as const) {
    it(`leaves out exactly the base layers (${layout}) and passes everything else through`, async () => {
      const { tar, diffIds } = make([...base, added]);
      const { stream, result } = trimmedArchive(Readable.from([await tar]), diffIds.slice(0, 2), diffIds);
      const names = await namesIn(stream);
      const r = await result;
      assert.deepEqual(r, { omitted: 2, omittedBytes: 70_000, kept: 1 });
      const sizes = [...names.values()];
      assert.ok(sizes.includes(5_000), 'the added layer is sent');
      assert.ok(!sizes.includes(40_000) && !sizes.includes(30_000), 'no base layer is sent');
      assert.ok(names.has('manifest.json'));
    });
  }

  it('leaves out every layer of a commit that added none (the guest changed nothing): its top is the base top', async () => {
    const { tar, diffIds } = legacyArchive(base);
    const { stream, result } = trimmedArchive(Readable.from([await tar]), diffIds, diffIds);
    const names = await namesIn(stream);
    assert.deepEqual(await result, { omitted: 2, omittedBytes: 70_000, kept: 0 });
    assert.ok(![...names.keys()].some((n) => n.endsWith('layer.tar')));
  });

  it('trims only an image that is its base plus at most one layer', () => {
    const [a, b, c] = ['sha256:a', 'sha256:b', 'sha256:c'];
    assert.equal(trimmable([a, b, c], [a, b]), true);
    assert.equal(trimmable([a, b], [a, b]), true);
    assert.equal(trimmable([a, b, c], [a]), false);
    assert.equal(trimmable([a, c], [a, b]), false);
    assert.equal(trimmable([a], []), false);
  });

  it('fails when the layers left out are not the base the receiver has', async () => {
    const { tar, diffIds } = legacyArchive([...base, added]);
    const other = [`sha256:${'a'.repeat(64)}`, diffIds[1]!];
    const { stream, result } = trimmedArchive(Readable.from([await tar]), other, diffIds);
    await assert.rejects(namesIn(stream));
    await assert.rejects(result, (err: { code?: string }) => err.code === 'IMAGE_UPLOAD_FAILED');
  });

  it('fails when the older layout does not mark the top layer as the image (never a wrong trim)', async () => {
    const { tar, diffIds } = legacyArchive([...base, added], true);
    const { stream, result } = trimmedArchive(Readable.from([await tar]), diffIds.slice(0, 2), diffIds);
    await assert.rejects(namesIn(stream));
    await assert.rejects(result, /layer/);
  });
});
