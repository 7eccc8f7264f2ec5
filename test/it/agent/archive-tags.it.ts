import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { extract as tarExtract, pack as tarPack } from 'tar-stream';
import type { HostImage } from '../../../agent/client/types.js';
import { parseEndpoint, readBody, requestJson } from '../../../common/http-client.js';
import { LABEL_PROJECT } from '../../../agent/runtime/types.js';
import { TEST_IMAGE, docker, imageIdOf, saveImage, startTestAgent, type TestAgent } from './docker-helpers.js';

const PROJECT = 'berth-it-archive-tags';

/** Rewrites the manifest.json of a `docker save` archive to name `tags`, and adds a legacy repositories file naming them too. */
async function retagged(archive: Buffer, tags: string[], imageHex: string): Promise<Buffer> {
  const extract = tarExtract();
  const pack = tarPack();
  const out: Buffer[] = [];
  const collected = (async () => {
    for await (const c of pack) out.push(c as Buffer);
  })();
  Readable.from([archive]).pipe(extract as unknown as NodeJS.WritableStream);
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    let body = Buffer.concat(chunks);
    if (entry.header.name === 'manifest.json') {
      const items = JSON.parse(body.toString('utf8')) as Array<{ RepoTags: string[] | null }>;
      body = Buffer.from(JSON.stringify(items.map((i) => ({ ...i, RepoTags: tags }))));
    }
    pack.entry({ ...entry.header, size: body.length }, body);
  }
  const repositories: Record<string, Record<string, string>> = {};
  for (const t of tags) {
    const [repo, tag] = t.split(':');
    repositories[repo!] = { [tag!]: imageHex };
  }
  pack.entry({ name: 'repositories' }, JSON.stringify(repositories));
  pack.finalize();
  await collected;
  return Buffer.concat(out);
}

/** A tenant's image archive cannot move a tag on the compute host (docker load on the real dockerd). */
describe('berth-agent image archives on dockerd: no tags', function () {
  this.timeout(120_000);
  const victim = `berth-it-victim-${randomUUID().slice(0, 8)}`;
  let t: TestAgent;
  let knownId: string;
  const images: string[] = [];

  before(async () => {
    t = await startTestAgent();
    knownId = await imageIdOf(TEST_IMAGE);
    // The host's tag the tenant aims at, pointing at a known image.
    await docker('POST', `/images/${encodeURIComponent(TEST_IMAGE)}/tag?repo=${victim}&tag=latest`);
  });

  after(async () => {
    await docker('DELETE', `/images/${encodeURIComponent(`${victim}:latest`)}`, undefined, [404, 409]);
    await t?.close(PROJECT, images);
  });

  it("loads an archive whose manifest.json and repositories name <victim>:latest, and the host's tag still points where it did", async () => {
    // A unique image of the tenant's, saved, then removed so that the agent really loads it.
    const src = `berth-it-src-${randomUUID()}`;
    const made = await docker<{ Id: string }>('POST', `/containers/create?name=${src}`, { Image: TEST_IMAGE, Labels: { [LABEL_PROJECT]: PROJECT } });
    const own = `berth-it-hostile-${randomUUID().slice(0, 8)}`;
    const commit = await docker<{ Id: string }>(
      'POST',
      `/commit?container=${made.body.Id}&repo=${own}&tag=x&changes=${encodeURIComponent('LABEL berth.it=hostile')}`,
    );
    images.push(commit.body.Id);
    const saved = await readBody(await saveImage(`${own}:x`), 512 * 1024 * 1024);
    await docker('DELETE', `/containers/${made.body.Id}?force=1`);
    await docker('DELETE', `/images/${encodeURIComponent(`${own}:x`)}?force=1`);
    const hostile = await retagged(saved, [`${victim}:latest`], commit.body.Id.slice('sha256:'.length));

    const glanceId = randomUUID();
    t.store.add(glanceId, { docker_image_id: commit.body.Id }, async () => Readable.from([hostile]));
    const res = await requestJson<{ image: HostImage }>(parseEndpoint(t.agent.url), {
      method: 'PUT',
      path: `/v1/images/${glanceId}`,
      headers: { authorization: `Bearer ${t.agent.token}` },
    });
    const image = res.body.image;
    assert.equal(image.present, true);
    assert.equal(image.docker_image_id, commit.body.Id);

    assert.equal(await imageIdOf(`${victim}:latest`), knownId, "the host's tag was moved by the archive");
    const loaded = await docker<{ RepoTags: string[] | null }>('GET', `/images/${commit.body.Id}/json`);
    assert.deepEqual(loaded.body.RepoTags ?? [], [], 'the loaded image got a name from the archive');
  });
});
