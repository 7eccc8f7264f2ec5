import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { BerthError } from '../../../common/errors.js';
import { createImageClient } from '../../../glance-bridge/client/http.js';
import { collectUnreferencedBlobs } from '../../../glance-bridge/gc.js';
import { buildDockerSave, buildImage, tarOf } from '../../fakes/image-builder.js';
import { inProcessAgent } from '../../support/in-process.js';
import { call, startApiServer } from './api-server.js';
import { createHarness, type Harness } from './harness.js';

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const sha512 = (b: Buffer) => createHash('sha512').update(b).digest('hex');

describe('glance-bridge image upload (PUT /v2/images/{id}/file)', () => {
  let h: Harness;
  let api: { base: string; close(): Promise<void> };
  const LIMIT = 256 * 1024;

  beforeEach(async () => {
    h = await createHarness({ maxImageBytes: LIMIT });
    api = await startApiServer(h);
  });
  afterEach(async () => {
    await api.close();
    await h.close();
  });

  async function queued(body: Record<string, unknown> = { container_format: 'bare', disk_format: 'raw' }): Promise<string> {
    const created = await call(api.base, 'POST', '/v2/images', { name: 'up', ...body });
    assert.equal(created.status, 201);
    return created.json.id as string;
  }

  const storedBlobs = async () => {
    const all: string[] = [];
    for await (const d of h.blobs.list()) all.push(d);
    return all;
  };

  it('stores the data, goes active with size, checksum and sha512, and streams it back with ranges', async () => {
    const id = await queued();
    const data = randomBytes(100_000);
    const put = await call(api.base, 'PUT', `/v2/images/${id}/file`, data);
    assert.equal(put.status, 204);
    const image = (await call(api.base, 'GET', `/v2/images/${id}`)).json;
    assert.equal(image.status, 'active');
    assert.equal(image.size, data.length);
    assert.equal(image.checksum, md5(data));
    assert.equal(image.os_hash_algo, 'sha512');
    assert.equal(image.os_hash_value, sha512(data));

    const file = await call(api.base, 'GET', `/v2/images/${id}/file`);
    assert.equal(file.status, 200);
    assert.equal(file.headers.get('content-md5'), md5(data));
    assert.deepEqual(file.bytes, data);
    const part = await call(api.base, 'GET', `/v2/images/${id}/file`, undefined, { range: 'bytes=10-19' });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), `bytes 10-19/${data.length}`);
    assert.deepEqual(part.bytes, data.subarray(10, 20));
    const tail = await call(api.base, 'GET', `/v2/images/${id}/file`, undefined, { range: 'bytes=-5' });
    assert.deepEqual(tail.bytes, data.subarray(data.length - 5));
    const outside = await call(api.base, 'GET', `/v2/images/${id}/file`, undefined, { range: `bytes=${data.length}-` });
    assert.equal(outside.status, 416);
    assert.equal(outside.headers.get('content-range'), `bytes */${data.length}`);
  });

  it('answers 409 unless the image is queued, and 415 for other media types', async () => {
    const id = await queued();
    assert.equal((await call(api.base, 'PUT', `/v2/images/${id}/file`, '{}', { 'content-type': 'application/json' })).status, 415);
    assert.equal((await call(api.base, 'PUT', `/v2/images/${id}/file`, Buffer.from('one'))).status, 204);
    const again = await call(api.base, 'PUT', `/v2/images/${id}/file`, Buffer.from('two'));
    assert.equal(again.status, 409);
    assert.equal(again.json.error.code, 'IMAGE_CONFLICT');
    const missing = await call(api.base, 'PUT', `/v2/images/${'1'.repeat(8)}-1111-1111-1111-111111111111/file`, Buffer.from('x'));
    assert.equal(missing.status, 404);
  });

  it('refuses data over max_image_bytes with 413: declared up front, the image stays queued; found while streaming, it is killed', async () => {
    const id = await queued();
    const res = await call(api.base, 'PUT', `/v2/images/${id}/file`, randomBytes(LIMIT + 1));
    assert.equal(res.status, 413);
    assert.equal(res.json.error.code, 'BLOB_TOO_LARGE');
    assert.equal((await call(api.base, 'GET', `/v2/images/${id}`)).json.status, 'queued');

    // No Content-Length (chunked, as glanceclient sends): the cap is hit mid-stream.
    const chunks = Array.from({ length: 5 }, () => randomBytes(LIMIT / 4));
    await assert.rejects(h.uploader.upload(id, Readable.from(chunks), null), (err: unknown) => err instanceof BerthError && err.code === 'BLOB_TOO_LARGE');
    const image = (await call(api.base, 'GET', `/v2/images/${id}`)).json;
    assert.equal(image.status, 'killed');
    assert.match(image.berth_upload_error, /BLOB_TOO_LARGE/);
    assert.equal((await call(api.base, 'GET', `/v2/images/${id}/file`)).status, 204);
    assert.deepEqual(await storedBlobs(), []);
    assert.deepEqual(readdirSync(join(h.blobs.root, 'tmp')), []);
  });

  it('kills the image and leaves nothing when the stream breaks midway', async () => {
    const id = await queued();
    async function* broken(): AsyncGenerator<Buffer> {
      yield randomBytes(1000);
      throw new Error('client went away');
    }
    await assert.rejects(h.uploader.upload(id, Readable.from(broken()), null), /client went away/);
    assert.equal((await h.images.require(id)).status, 'killed');
    assert.equal(await h.images.fileOf(id), null);
    assert.deepEqual(await storedBlobs(), []);
    assert.deepEqual(readdirSync(join(h.blobs.root, 'tmp')), []);
  });

  it('sets docker_image_id of a docker save archive from the config content', async () => {
    const built = await buildImage();
    const id = await queued({ container_format: 'docker', disk_format: 'raw' });
    const archive = await buildDockerSave(built);
    assert.equal((await call(api.base, 'PUT', `/v2/images/${id}/file`, archive)).status, 204);
    const image = (await call(api.base, 'GET', `/v2/images/${id}`)).json;
    assert.equal(image.status, 'active');
    assert.equal(image.docker_image_id, built.config.descriptor.digest);
    assert.equal(image.size, archive.length);
  });

  it('refuses docker uploads that are not a usable docker save archive', async () => {
    const built = await buildImage();
    const lying = await buildDockerSave(built, { configName: `${'a'.repeat(64)}.json` });
    const cases: [string, Buffer][] = [
      ['not a tar', Buffer.from('this is not a tar archive at all, just text that goes on for a while'.repeat(20))],
      ['missing config', await buildDockerSave(built).then((b) => b.subarray(0, b.length - 2048 - 512 * 4))],
    ];
    for (const [what, data] of [...cases, ['config under another name', lying] as [string, Buffer]]) {
      const id = await queued({ container_format: 'docker', disk_format: 'raw' });
      const res = await call(api.base, 'PUT', `/v2/images/${id}/file`, data);
      if (what === 'config under another name') {
        // The config is hashed from its bytes: a wrong name still gives the true id.
        assert.equal(res.status, 204, what);
        assert.equal((await h.images.require(id)).properties.docker_image_id, built.config.descriptor.digest);
        continue;
      }
      assert.equal(res.status, 400, what);
      assert.equal(res.json.error.code, 'INVALID_INPUT', what);
      assert.equal((await h.images.require(id)).status, 'killed', what);
    }
  });

  it('refuses docker archives that name images, which docker load would point at this content on a host', async () => {
    const built = await buildImage();
    const index = (annotations: Record<string, string>) =>
      JSON.stringify({
        schemaVersion: 2,
        manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: built.manifestDigest, size: 1, annotations }],
      });
    const cases: [string, Buffer][] = [
      ['RepoTags', await buildDockerSave(built, { repoTags: ['busybox:latest'] })],
      ['a repositories file', await buildDockerSave(built, { extra: { repositories: '{"registry":{"2":"x"}}' } })],
      [
        'an index.json ref.name annotation',
        await buildDockerSave(built, { extra: { 'index.json': index({ 'org.opencontainers.image.ref.name': 'latest' }) } }),
      ],
      [
        'an index.json containerd image name',
        await buildDockerSave(built, { extra: { 'index.json': index({ 'io.containerd.image.name': 'docker.io/library/busybox:latest' }) } }),
      ],
      // Go's JSON decoder reads a lower-case key as RepoTags.
      [
        'repotags in lower case',
        await tarOf({
          [`${built.config.descriptor.digest.slice(7)}.json`]: built.config.bytes,
          'manifest.json': JSON.stringify([{ Config: `${built.config.descriptor.digest.slice(7)}.json`, repotags: ['registry:2'], Layers: [] }]),
        }),
      ],
    ];
    for (const [what, data] of cases) {
      const id = await queued({ container_format: 'docker', disk_format: 'raw' });
      const res = await call(api.base, 'PUT', `/v2/images/${id}/file`, data);
      assert.equal(res.status, 400, what);
      assert.equal(res.json.error.code, 'INVALID_INPUT', what);
      assert.match(res.json.error.message, /docker save <image id>/, what);
      assert.equal((await h.images.require(id)).status, 'killed', what);
    }
    for (const repoTags of [null, []]) {
      const id = await queued({ container_format: 'docker', disk_format: 'raw' });
      assert.equal((await call(api.base, 'PUT', `/v2/images/${id}/file`, await buildDockerSave(built, { repoTags }))).status, 204, JSON.stringify(repoTags));
    }
  });

  it('keeps uploaded data through blob GC until the image is deleted', async () => {
    const id = await queued();
    const data = randomBytes(5000);
    await h.uploader.upload(id, Readable.from([data]), data.length);
    assert.deepEqual(await collectUnreferencedBlobs(h), []);
    await h.images.markDeleted(id);
    assert.equal((await collectUnreferencedBlobs(h)).length, 1);
    await assert.rejects(h.uploader.upload(id, Readable.from([data]), null), (err: unknown) => err instanceof BerthError && err.code === 'IMAGE_NOT_FOUND');
  });
});

describe('glance-bridge HTTP client uploadImage', () => {
  let h: Harness;
  let api: { base: string; close(): Promise<void> };
  beforeEach(async () => {
    h = await createHarness({ maxImageBytes: 64 * 1024 });
    api = await startApiServer(h);
  });
  afterEach(async () => {
    await api.close();
    await h.close();
  });

  it('streams data into a queued image and returns it active; refusals keep their codes', async () => {
    const client = createImageClient({ url: api.base, agent: inProcessAgent });
    const built = await buildImage();
    const archive = await buildDockerSave(built);
    const id = (await call(api.base, 'POST', '/v2/images', { name: 'snap', container_format: 'docker', disk_format: 'raw' })).json.id as string;
    const image = await client.uploadImage!(id, Readable.from([archive.subarray(0, 1000), archive.subarray(1000)]));
    assert.equal(image.status, 'active');
    assert.equal(image.docker_image_id, built.config.descriptor.digest);
    assert.equal(image.checksum, md5(archive));
    await assert.rejects(client.uploadImage!(id, Readable.from([archive])), (err: unknown) => err instanceof BerthError && err.code === 'IMAGE_CONFLICT');

    const big = (await call(api.base, 'POST', '/v2/images', { name: 'big', container_format: 'bare', disk_format: 'raw' })).json.id as string;
    const chunks = Array.from({ length: 40 }, () => randomBytes(4096));
    await assert.rejects(client.uploadImage!(big, Readable.from(chunks)), (err: unknown) => err instanceof BerthError && err.code === 'BLOB_TOO_LARGE');
    assert.equal((await h.images.require(big)).status, 'killed');
  });
});
